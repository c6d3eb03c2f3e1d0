"""Tiny synthetic models for unit tests: a random llama and a random T5, each with a byte-level BPE
tokenizer trained here on a small corpus.  Built in a second or two, saved as real HF directories."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "the movie was great and the acting was wonderful",
    "the film was terrible and boring, a waste of time",
    "what is the capital of france? where is the river?",
    "who wrote the book? how many people live there?",
    "free prize! call now to claim your cash reward",
    "are we still meeting for lunch tomorrow at noon",
    "positive negative spam ham question answer location number person",
] * 20

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def train_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer (GPT-2 style, ``Ġ`` marks a leading space) as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def make_tiny_llama(path: str | Path, *, hidden: int = 32, layers: int = 2, extra_rows: int = 8,
                    tie: bool = False, seed: int = 0, safe_serialization: bool = True,
                    initializer_range: float = 0.02):
    """A random LlamaForCausalLM saved to ``path`` with its tokenizer; the embedding matrix has
    ``extra_rows`` unused rows beyond the tokenizer (as padded vocabularies do).  ``initializer_range``: the
    weights' standard deviation (at the default 0.02 a prompt barely moves the last position's logits; at 0.3
    prompt tuning learns a toy task in a few dozen steps).  Returns (model, tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = train_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok) + extra_rows, hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=tie, initializer_range=initializer_range,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    path = Path(path)
    model.save_pretrained(path, safe_serialization=safe_serialization)
    tok.save_pretrained(path)
    return model, tok


def make_tiny_t5(path: str | Path, *, d_model: int = 32, seed: int = 0):
    """A random T5ForConditionalGeneration saved to ``path`` with its tokenizer.  Returns (model, tokenizer)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    tok = train_tokenizer()
    cfg = T5Config(vocab_size=len(tok), d_model=d_model, d_kv=8, d_ff=d_model * 2, num_layers=2,
                   num_decoder_layers=2, num_heads=4, pad_token_id=tok.pad_token_id,
                   eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    model = T5ForConditionalGeneration(cfg).eval()
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok


GEMMA_FAMILY = {  # model_type -> (config class, causal-LM class): each scales its token embeddings by sqrt(d)
    "gemma": ("GemmaConfig", "GemmaForCausalLM"),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM"),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM"),
}


def make_tiny_gemma(path: str | Path, family: str = "gemma2", *, hidden: int = 64, seed: int = 0):
    """A random Gemma-family causal LM (``gemma``, ``gemma2`` or ``gemma3_text``) saved to ``path`` with its
    tokenizer; its embedding module multiplies rows by sqrt(hidden) (8.0 by default).  Returns (model, tok)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    tok = train_tokenizer()
    cfg_cls, model_cls = (getattr(transformers, n) for n in GEMMA_FAMILY[family])
    cfg = cfg_cls(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                  pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  tie_word_embeddings=True)
    model = model_cls(cfg).eval()
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok


def make_tiny_gpt2(path: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0):
    """A random GPT2LMHeadModel (learned positions, ``transformer.h`` / ``ln_f``, tied embeddings) saved to
    ``path`` with its tokenizer.  Returns (model, tokenizer)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    tok = train_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_embd=hidden, n_layer=layers, n_head=4, n_positions=256,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(cfg).eval()
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok
