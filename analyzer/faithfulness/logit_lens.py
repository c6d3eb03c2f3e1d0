"""Logit lens (nostalgebraist 2020): each virtual token's residual stream after every layer, read through the
final norm and the output layer, with hooks installed by a context manager that removes them in ``finally``.
:func:`decoder_parts` finds the decoder layers, final norm and output layer of any causal LM the toolkit loads;
the description reading (:mod:`.description`) patches through the same layers.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Iterator, Mapping

import numpy as np

from .._params import Interval, Options, check_params
from ..exceptions import AnalyzerError
from ..types import Vocabulary
from ._common import _device, _prompt_matrix, _text_ids, _token_strings

def decoder_parts(model):
    """(decoder layers, final norm, output layer) of a causal LM; AnalyzerError when they cannot be found."""
    import torch

    base = getattr(model, getattr(model, "base_model_prefix", "") or "", None)
    if base is None or base is model:
        base = getattr(model, "model", None) or getattr(model, "transformer", None)
    cfg = getattr(model.config, "get_text_config", lambda: model.config)()
    n_layers = getattr(cfg, "num_hidden_layers", None)
    layers = None
    if base is not None:
        for name in ("layers", "h", "blocks", "decoder_layers"):
            cand = getattr(base, name, None)
            if isinstance(cand, torch.nn.ModuleList):
                layers = cand
                break
        if layers is None:
            for _, mod in base.named_modules():
                if isinstance(mod, torch.nn.ModuleList) and (n_layers is None or len(mod) == n_layers):
                    layers = mod
                    break
    norm = None
    if base is not None:
        for name in ("norm", "final_layernorm", "ln_f", "final_layer_norm", "norm_f"):
            if isinstance(getattr(base, name, None), torch.nn.Module):
                norm = getattr(base, name)
                break
    head = model.get_output_embeddings()
    if layers is None or norm is None or head is None:
        raise AnalyzerError(f"The logit lens cannot find the decoder layers, final norm and output layer of "
                            f"{type(model).__name__}; supported: llama-like (model.layers, model.norm) and "
                            f"gpt2-like (transformer.h, transformer.ln_f) causal LMs.")
    if n_layers is not None:
        layers = layers[:n_layers]
    return layers, norm, head


@contextmanager
def residual_stream_hooks(layers) -> Iterator[dict[int, Any]]:
    """Record the residual stream after each decoder layer: yields a dict ``{layer (1-based): "batch seq d"}``
    filled during the forward.  The hooks are removed in ``finally`` (also on error)."""
    store: dict[int, Any] = {}
    handles = []
    try:
        for i, layer in enumerate(layers):
            def hook(_module, _inputs, output, i=i):
                h = output[0] if isinstance(output, (tuple, list)) else output
                store[i + 1] = h.detach()
            handles.append(layer.register_forward_hook(hook))
        yield store
    finally:
        for h in handles:
            h.remove()


@dataclass(frozen=True, eq=False)
class LogitLens:
    """Logit-lens reading of a soft prompt (and optional text after it).

    layers:      ``0..L`` (0: the input embeddings, l: after decoder layer l).
    positions:   a label per position: ``v0..v{n-1}`` for virtual tokens, then the suffix's tokens.
    n_virtual:   how many of the positions are virtual tokens.
    top_ids:     int ``"layer position k"``; top_tokens: the same as readable strings; top_probs: float32
                 ``"layer position k"`` (softmax over the whole vocabulary).
    entropy:     float32 ``"layer position"`` (nats) of each layer's distribution.
    tracked:     ``{name: float32 "layer position"}`` probability of chosen tokens (e.g. the label words).
    """

    layers: tuple[int, ...]
    positions: tuple[str, ...]
    n_virtual: int
    top_ids: np.ndarray
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]
    top_probs: np.ndarray
    entropy: np.ndarray
    tracked: Mapping[str, np.ndarray] = field(default_factory=dict)
    tracked_ids: Mapping[str, int] = field(default_factory=dict)

    def final_tokens(self) -> list[str]:
        """The top-1 token at the last layer for each position."""
        return [t[0] for t in self.top_tokens[-1]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers), "positions": list(self.positions), "n_virtual": self.n_virtual,
            "top": [[[{"token_id": int(i), "token": s, "prob": float(p)}
                      for i, s, p in zip(self.top_ids[li, pi], self.top_tokens[li][pi], self.top_probs[li, pi])]
                     for pi in range(len(self.positions))] for li in range(len(self.layers))],
            "entropy": self.entropy.round(5).tolist(),
            "tracked": {k: v.round(6).tolist() for k, v in self.tracked.items()},
            "tracked_ids": {k: int(v) for k, v in self.tracked_ids.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LogitLens:
        """Read back a ``to_dict()`` (the layout a faithfulness section carries)."""
        top = d["top"]
        return cls(layers=tuple(d["layers"]), positions=tuple(d["positions"]), n_virtual=int(d["n_virtual"]),
                   top_ids=np.array([[[c["token_id"] for c in cell] for cell in row] for row in top], np.int64),
                   top_tokens=tuple(tuple(tuple(c["token"] for c in cell) for cell in row) for row in top),
                   top_probs=np.array([[[c["prob"] for c in cell] for cell in row] for row in top], np.float32),
                   entropy=np.array(d["entropy"], np.float32),
                   tracked={k: np.array(v, np.float32) for k, v in (d.get("tracked") or {}).items()},
                   tracked_ids={k: int(v) for k, v in (d.get("tracked_ids") or {}).items()})


def logit_lens(model, tokenizer, prompt, *, k: int = 5, suffix: str | None = None, suffix_positions: str = "all",
               vocab: Vocabulary | None = None, track: Mapping[str, int] | None = None) -> LogitLens:
    """Decode each virtual token's hidden state at every layer: ``lm_head(final_norm(h_l))`` at the virtual
    positions (plus those of ``suffix``, a text placed after the prompt, e.g. a formatted example).

    The input is ``[prompt][suffix tokens]`` with no special tokens before the prompt, as in prompt tuning;
    because attention is causal, the virtual positions do not depend on the suffix.  At the last layer the
    reading equals the model's own logits.  ``track``: ``{name: token id}`` whose probability is recorded at
    every layer and position (e.g. the task's label words).  ``suffix_positions``: ``all`` the suffix's
    positions, or only the ``last`` (where the next token -- a label word -- is predicted).  Deterministic; no
    gradients."""
    import torch

    k, _ = check_params("logit_lens", {"k": k, "suffix_positions": suffix_positions}, {
        "k": [Interval(Integral, 1, None)], "suffix_positions": [Options("all", "last")]}).values()
    layers, norm, head = decoder_parts(model)
    dev = _device(model)
    emb_mod = model.get_input_embeddings()
    p = _prompt_matrix(prompt, model).to(dev, emb_mod.weight.dtype)
    suffix_ids = _text_ids(tokenizer, suffix) if suffix else []
    parts = [p]
    if suffix_ids:
        parts.append(emb_mod(torch.tensor(suffix_ids, device=dev)))
    x = torch.cat(parts, 0).unsqueeze(0)
    cap = getattr(getattr(model.config, "get_text_config", lambda: model.config)(), "final_logit_softcapping",
                  None)
    vocab_rows = int(head.weight.shape[0])
    k = min(int(k), vocab_rows)
    track = dict(track or {})
    for name, tid in track.items():
        if not 0 <= int(tid) < vocab_rows:
            raise AnalyzerError(f"Tracked token {name!r} has id {tid}, outside the output vocabulary "
                                f"[0, {vocab_rows}).")
    n = p.shape[0]
    keep = list(range(x.shape[1]))
    if suffix_ids and suffix_positions == "last":
        keep = keep[:n] + keep[-1:]
    with torch.no_grad(), residual_stream_hooks(layers) as store:
        model(inputs_embeds=x, use_cache=False)
        streams = [h[:, keep] for h in [x] + [store[i] for i in range(1, len(layers) + 1)]]
        top_ids, top_probs, ent = [], [], []
        tracked = {name: [] for name in track}
        for h in streams:
            logits = head(norm(h))[0].float()
            if cap:
                logits = torch.tanh(logits / cap) * cap
            logp = torch.log_softmax(logits, -1)
            probs = logp.exp()
            tp, ti = probs.topk(k, dim=-1)
            top_ids.append(ti.cpu().numpy())
            top_probs.append(tp.cpu().numpy())
            ent.append((-(probs * logp).nan_to_num().sum(-1)).cpu().numpy())
            for name, tid in track.items():
                tracked[name].append(probs[:, int(tid)].cpu().numpy())
    top_ids_a = np.stack(top_ids).astype(np.int64)
    labels = [f"v{i}" for i in range(n)] + _token_strings(suffix_ids, tokenizer, None)
    labels = [labels[i] for i in keep]
    tokens = tuple(tuple(tuple(_token_strings(row, tokenizer, vocab)) for row in layer) for layer in top_ids_a)
    return LogitLens(layers=tuple(range(len(streams))), positions=tuple(labels), n_virtual=int(n),
                     top_ids=top_ids_a, top_tokens=tokens, top_probs=np.stack(top_probs).astype(np.float32),
                     entropy=np.stack(ent).astype(np.float32),
                     tracked={name: np.stack(v).astype(np.float32) for name, v in tracked.items()},
                     tracked_ids={name: int(t) for name, t in track.items()})

