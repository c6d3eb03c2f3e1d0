"""Hugging Face model directories and hub ids: only the input-embedding tensor is read.

A hub id downloads only config, tokenizer and the weight file that holds the embeddings.  The tensor's name
comes from the architecture in ``config.json``: the model class is instantiated on the meta device (no memory,
no weights, ``trust_remote_code`` never enabled) and the name of ``get_input_embeddings().weight`` is matched
against the checkpoint's keys (with or without the ``base_model_prefix``).  ``model.safetensors``, a sharded
safetensors index (only the shard holding the tensor is opened), and ``pytorch_model.bin``
(``torch.load(weights_only=True)``: pickles are never executed).  A folder with neither but a single ``.gguf``
file is read as that file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..cache import atomic_write_text, entry_dir, file_key
from ..exceptions import InputFileError, ModelNotFoundError
from ..types import ModelSource
from ._gguf import _gguf_plan
from ._tokens import _finish_tokens, _guess_scheme, _scheme_from_tokenizer_json
from ._vocab_cache import _CACHE_FORMAT, _Built, _Plan

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                    "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model",
                    "sentencepiece.bpe.model")
_SAFETENSORS, _SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
_BIN, _BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
# Only used when transformers does not know the architecture (custom code that we never execute): a tensor
# whose name ends with one of these, tried in order, and only when exactly one key matches.
_KNOWN_EMBEDDING_SUFFIXES = ("embed_tokens.weight", "tok_embeddings.weight", "word_embeddings.weight",
                             "wte.weight", "embed_in.weight", "shared.weight")


class _LocalFiles:
    def __init__(self, root: Path):
        self.root = root
        self.label = str(root)

    def get(self, name: str, *, first: bool = False) -> Path | None:
        p = self.root / name
        return p if p.is_file() else None

    def ggufs(self) -> list[Path]:
        return sorted(self.root.glob("*.gguf"))


class _HubFiles:
    """Single files from the hub (or its local cache), one ``hf_hub_download`` each."""

    def __init__(self, repo: str):
        self.repo = repo
        self.label = f"hub:{repo}"
        self.offline = False

    def _unreachable(self, e: Exception) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"Cannot fetch {self.repo!r}: the Hugging Face hub is unreachable and the model is not in the local "
            f"hub cache ({type(e).__name__}). Pass a local model directory or a .gguf file instead.")

    def get(self, name: str, *, first: bool = False) -> Path | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                            RepositoryNotFoundError, RevisionNotFoundError)

        try:
            return Path(hf_hub_download(self.repo, name, local_files_only=self.offline))
        except LocalEntryNotFoundError as e:  # offline, or not cached while the hub cannot be reached
            if first:
                raise self._unreachable(e) from e
            self.offline = True
            return None
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise ModelNotFoundError(f"No model {self.repo!r} on the Hugging Face hub (or it is gated/private). "
                                     f"Pass a local model directory or a .gguf file.") from e
        except EntryNotFoundError:
            return None
        except (HfHubHTTPError, OSError) as e:
            if first:
                raise self._unreachable(e) from e
            self.offline = True
            return None

    def ggufs(self) -> list[Path]:
        return []


def _hf_plan(src: ModelSource, files) -> _Plan:
    config = files.get("config.json", first=True)
    if config is None:
        raise ModelNotFoundError(f"{files.label!r} has no config.json; expected a Hugging Face model directory.")
    root = config.parent
    tokenizer_files = [p for p in (files.get(n) for n in _TOKENIZER_FILES) if p is not None]

    if (index := files.get(_SAFETENSORS_INDEX)) is not None or (index := files.get(_BIN_INDEX)) is not None:
        weight_map = _read_index(index)
        names = _embedding_names(config)
        key = _match_key(names, weight_map.keys(), index)
        shard = files.get(weight_map[key])
        if shard is None:
            raise InputFileError(f"The shard {weight_map[key]!r} that holds {key!r} (named in {str(index)!r}) "
                                 f"is missing from {files.label!r}.")
        fmt = "safetensors" if index.name == _SAFETENSORS_INDEX else "bin"
        weights, key_files = shard, [config, *tokenizer_files, index, shard]
        all_keys: list[str] | None = list(weight_map)
    elif (weights := files.get(_SAFETENSORS)) is not None:
        fmt, key_files, all_keys = "safetensors", [config, *tokenizer_files, weights], None
    elif (weights := files.get(_BIN)) is not None:
        fmt, key_files, all_keys = "bin", [config, *tokenizer_files, weights], None
    else:
        ggufs = files.ggufs()
        if len(ggufs) == 1:
            return _gguf_plan(ggufs[0])
        raise InputFileError(
            f"{files.label!r} has neither {_SAFETENSORS}, a sharded {_SAFETENSORS_INDEX}, {_BIN} nor a single "
            f".gguf file" + (f" (it has {len(ggufs)} .gguf files: name one)." if ggufs else "."))

    def build() -> _Built:
        return _build_hf(config, root, weights, fmt, tokenizer_files, all_keys)

    return _Plan(key_files=key_files, source=weights, build=build)


def _read_index(index: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError("empty weight_map")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputFileError(f"The shard index {str(index)!r} is corrupt: expected JSON with a 'weight_map' "
                             f"({type(e).__name__}: {e}).") from e
    return weight_map


def _embedding_names(config: Path) -> dict:
    """From the architecture in ``config.json``: the parameter name(s) of the input embeddings, of the output
    embeddings, the base-model prefix, and the config's tie flag.  Memoised by the config's content so a warm
    load of a sharded checkpoint never imports transformers."""
    memo = entry_dir("vocab", "names") / f"{file_key(config)}-{_CACHE_FORMAT}.json"
    try:
        return json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    names = _embedding_names_uncached(config)
    try:
        atomic_write_text(memo, json.dumps(names))
    except OSError:
        pass
    return names


def _embedding_names_uncached(config: Path) -> dict:
    import torch
    import transformers
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(str(config.parent), trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raw = _read_json(config)
        if isinstance(raw, dict) and raw.get("architectures"):
            # An architecture transformers does not know (custom code, never executed): fall back to names.
            return {"input": [], "output": [], "prefix": "", "tie": bool(raw.get("tie_word_embeddings", False)),
                    "architecture": raw["architectures"][0], "fallback": True}
        raise InputFileError(f"The config {str(config)!r} cannot be read by transformers "
                             f"{transformers.__version__}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                             ) from e

    arch = (getattr(cfg, "architectures", None) or [None])[0]
    candidates = []
    if arch and isinstance(getattr(transformers, arch, None), type):
        candidates.append(getattr(transformers, arch))
    candidates += [transformers.AutoModelForCausalLM, transformers.AutoModelForSeq2SeqLM, transformers.AutoModel]
    model, errors = None, []
    for cls in candidates:
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = (cls.from_config(cfg, trust_remote_code=False) if hasattr(cls, "from_config")
                         and cls.__name__.startswith("Auto") else cls(cfg))
            break
        except Exception as e:  # noqa: BLE001 - an unsupported (class, config) pair: try the next class
            errors.append(f"{getattr(cls, '__name__', cls)}: {e}")
    if model is None:
        return {"input": [], "output": [], "prefix": "", "architecture": arch or cfg.model_type,
                "tie": _tie_flag(cfg), "fallback": True}
    try:
        emb = model.get_input_embeddings()
        out = model.get_output_embeddings()
    except (NotImplementedError, AttributeError):
        emb = out = None
    modules = list(model.named_modules(remove_duplicate=False))
    inputs = [f"{n}.weight" for n, m in modules if emb is not None and m is emb and n]
    outputs = [f"{n}.weight" for n, m in modules if out is not None and m is out and n and f"{n}.weight" not in inputs]
    if not inputs and emb is not None:  # an embedding whose parameter is not called "weight"
        inputs = [n for n, p in model.named_parameters(remove_duplicate=False) if p is getattr(emb, "weight", None)]
    from ..scale import input_embed_scale

    return {"input": inputs, "output": outputs, "prefix": getattr(model, "base_model_prefix", "") or "",
            "tie": _tie_flag(cfg), "architecture": arch or type(model).__name__, "fallback": not inputs,
            "embed_scale": input_embed_scale(emb) if emb is not None else 1.0}


def _tie_flag(cfg) -> bool:
    try:
        text = cfg.get_text_config()
    except Exception:  # noqa: BLE001
        text = cfg
    return bool(getattr(text, "tie_word_embeddings", getattr(cfg, "tie_word_embeddings", False)))


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) + 1:] if prefix and name.startswith(prefix + ".") else name


def _find_key(wanted: list[str], keys, prefix: str) -> str | None:
    """The checkpoint key for one of ``wanted`` (model parameter names), allowing for the base-model prefix
    being present on one side and not the other."""
    keys = list(keys)
    keyset = set(keys)
    for w in wanted:
        if w in keyset:
            return w
    stripped = {}
    for k in keys:
        stripped.setdefault(_strip(k, prefix), k)
    for w in wanted:
        k = stripped.get(_strip(w, prefix))
        if k is not None:
            return k
    return None


def _match_key(names: dict, keys, where: Path) -> str:
    keys = list(keys)
    key = _find_key(names["input"], keys, names["prefix"])
    if key is None and (names.get("fallback") or not names["input"]):
        for suffix in _KNOWN_EMBEDDING_SUFFIXES:
            hits = [k for k in keys if k == suffix or k.endswith("." + suffix)]
            if len(hits) == 1:
                key = hits[0]
                break
    if key is None:
        wanted = ", ".join(names["input"]) or "(none: the architecture has no input embeddings)"
        shown = ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
        raise InputFileError(f"No input-embedding tensor found in {str(where)!r} for architecture "
                             f"{names.get('architecture')!r}: expected {wanted}; the file has {shown or 'no tensors'}.")
    return key


def _load_tensor(weights: Path, fmt: str, names: dict, all_keys: list[str] | None):
    """Read only the input-embedding tensor: ``(float32 array, key, all checkpoint keys)``."""
    import torch

    if fmt == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(weights), framework="pt") as f:
                keys = list(f.keys())
                key = _match_key(names, keys, weights)
                tensor = f.get_tensor(key)
        except (SafetensorError, OSError, RuntimeError) as e:
            raise InputFileError(f"The safetensors file {str(weights)!r} is corrupt or truncated: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    else:
        from ._tensor import torch_load_safe

        sd = torch_load_safe(weights, mmap=True, hint="pickles are not executed; re-save the checkpoint as "
                                                       "safetensors (save_pretrained(..., safe_serialization=True))")
        if not isinstance(sd, dict) or not all(isinstance(k, str) for k in sd):
            raise InputFileError(f"{str(weights)!r} does not hold a state dict (a mapping of names to tensors).")
        keys = list(sd)
        key = _match_key(names, keys, weights)
        tensor = sd[key]
        if not isinstance(tensor, torch.Tensor):
            raise InputFileError(f"{key!r} in {str(weights)!r} is a {type(tensor).__name__}, not a tensor.")
    if tensor.ndim != 2:
        raise InputFileError(f"The input embeddings {key!r} in {str(weights)!r} have shape {tuple(tensor.shape)}; "
                             f"expected 2 dimensions (vocab, d_model).")
    emb = tensor.detach().to(torch.float32).contiguous().numpy().copy()
    return emb, key, (all_keys if all_keys is not None else keys)


def _build_hf(config: Path, root: Path, weights: Path, fmt: str, tokenizer_files: list[Path],
              all_keys: list[str] | None) -> _Built:
    names = _embedding_names(config)
    emb, key, keys = _load_tensor(weights, fmt, names, all_keys)
    has_output = _find_key(names["output"], [k for k in keys if k != key], names["prefix"]) is not None
    tied = bool(names["tie"]) or (bool(names["output"]) and not has_output)
    raw, special, scheme = _hf_tokens(root, emb.shape[0], tokenizer_files)
    excluded = np.zeros(emb.shape[0], dtype=bool)
    excluded[[i for i in special if 0 <= i < emb.shape[0]]] = True
    raw_tokens, tokens = _finish_tokens(raw, excluded, scheme)
    scale = float(names.get("embed_scale", 1.0))
    if scale != 1.0:
        emb = np.asarray(emb, dtype=np.float32) * np.float32(scale)
    return _Built(embeddings=emb, raw_tokens=raw_tokens, tokens=tokens, excluded=excluded, tied=tied,
                  architecture=names.get("architecture"), scheme=scheme, embed_scale=scale,
                  extra={"tensor": key})


def _hf_tokens(root: Path, n_rows: int, tokenizer_files: list[Path]) -> tuple[list[str | None], set[int], str]:
    """Token strings by id (None for rows the tokenizer does not cover), special ids, and the scheme."""
    if not tokenizer_files:
        raise InputFileError(f"{str(root)!r} has no tokenizer files (tokenizer.json, tokenizer.model, vocab.json "
                             f"...); token strings are needed to read the vocabulary.")
    from transformers import AutoTokenizer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a broken tokenizer
        raise InputFileError(f"The tokenizer in {str(root)!r} cannot be loaded: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    raw: list[str | None] = [None] * n_rows
    for t, i in tok.get_vocab().items():
        if 0 <= i < n_rows:
            raw[i] = t
    special = set(int(i) for i in (tok.all_special_ids or []) if i is not None)
    special |= {int(i) for i, a in (getattr(tok, "added_tokens_decoder", None) or {}).items()
                if getattr(a, "special", False)}

    scheme = None
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        try:
            scheme = _scheme_from_tokenizer_json(json.loads(backend.to_str()))
        except (ValueError, AttributeError):
            scheme = None
    if scheme is None and (root / "tokenizer.json").is_file():
        spec = _read_json(root / "tokenizer.json")
        scheme = _scheme_from_tokenizer_json(spec) if isinstance(spec, dict) else None
    if scheme is None and any(p.suffix == ".model" for p in tokenizer_files):
        scheme = "sentencepiece"
    return raw, special, scheme or _guess_scheme(raw)
