"""The input-embedding scale: the factor between a checkpoint's embedding rows and what the model sees.

Some architectures multiply the output of their token-embedding module by a constant (Gemma 1, 2 and 3 by
``sqrt(hidden_size)``, ≈25.3 for Gemma 3 270M; BART-like models by ``sqrt(d_model)`` when ``scale_embedding``).
PEFT's prompt vectors are concatenated with that *scaled* output, and PEFT's TEXT init takes its vectors from
it, so a soft prompt lives in ``embed_scale × weight`` space.  The toolkit uses that one convention everywhere:
``Vocabulary.embeddings`` holds the rows the model sees, and every initialisation is taken from the module's
output.

The scale is found the way transformers computes it, never from a list of model names:

* a module with real weights is **measured**: its output for a few ids against the weight rows of those ids;
* a module on the meta device (the vocabulary loader builds the model there, with no weights) exposes the
  value transformers gave its constructor (``scalar_embed_scale``, or a float ``embed_scale``);
* anything else has scale 1.0."""

from __future__ import annotations

import math
import numbers


def input_embed_scale(module) -> float:
    """The constant factor ``module(ids) / module.weight[ids]`` of a token-embedding module (1.0 when none).

    Raises ``ValueError`` when a module with real weights scales its rows by anything other than one shared
    constant (the toolkit's convention would not hold for it)."""
    import torch

    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.device.type != "meta" and weight.ndim == 2 and weight.shape[0]:
        return _measured_scale(module, weight)
    for attr in ("scalar_embed_scale", "embed_scale"):
        v = getattr(module, attr, None)
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, torch.Tensor) and v.device.type != "meta" and v.numel() == 1:
            return float(v)
    return 1.0


def _measured_scale(module, weight) -> float:
    import torch

    with torch.no_grad():
        norms = weight[: min(int(weight.shape[0]), 4096)].float().norm(dim=1)
        ids = torch.nonzero(norms > 0).flatten()[:16]
        if ids.numel() == 0:
            return 1.0
        ids = ids.to(weight.device)
        out = module(ids).float()
        w = weight[ids].float()
    if out.shape != w.shape:
        return 1.0
    scale = float((out * w).sum() / (w * w).sum())
    # One shared constant (up to the module's own dtype rounding: bfloat16 keeps ~3 significant digits).
    tol = 1e-2 if weight.dtype in (torch.float16, torch.bfloat16) else 1e-4
    err = float((out - scale * w).norm() / max(float((scale * w).norm()), 1e-30))
    if not math.isfinite(scale) or err > tol:
        raise ValueError(f"The input-embedding module {type(module).__name__} does not scale its weight rows by "
                         f"one constant (relative residual {err:.2g}); its soft prompts cannot be compared with "
                         f"its vocabulary rows.")
    return 1.0 if abs(scale - 1.0) < tol else scale


def config_embed_scale(config) -> float:
    """The input-embedding scale of the model a transformers ``config`` describes: the model is built on the
    meta device (no memory, no weights, no remote code) and its embedding module is read."""
    import warnings

    import torch
    import transformers

    errors = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoModelForSeq2SeqLM, transformers.AutoModel):
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = cls.from_config(config, trust_remote_code=False)
            return input_embed_scale(model.get_input_embeddings())
        except Exception as e:  # noqa: BLE001 - an unsupported (class, config) pair: try the next class
            errors.append(e)
    raise ValueError(f"transformers cannot build a {getattr(config, 'model_type', '?')} model from this config "
                     f"({type(errors[-1]).__name__}: {str(errors[-1]).splitlines()[0] if str(errors[-1]) else ''})")


def gguf_embed_scale(path, model_meta: dict | None = None, vocab_size: int | None = None) -> float:
    """The input-embedding scale of the model in a GGUF file, from the transformers config that the file's
    metadata maps to (``transformers``' own GGUF reader builds it, as ``from_pretrained(gguf_file=...)`` does).

    ``model_meta``: the file's non-tokenizer metadata as ``{key: (type, array item type, value)}`` (the
    vocabulary loader's lean header parser collects it).  transformers then reads a metadata-only copy of a
    few KB instead of the whole file, whose ~100k token strings take it seconds to parse."""
    import os
    import tempfile

    from transformers import AutoConfig
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    if model_meta:
        with tempfile.TemporaryDirectory(prefix="softprompt-gguf-meta-") as tmp:
            small = os.path.join(tmp, "meta.gguf")
            _write_metadata_gguf(small, model_meta, vocab_size)
            cfg = dict(load_gguf_checkpoint(small, return_tensors=False)["config"])
    else:
        cfg = dict(load_gguf_checkpoint(str(path), return_tensors=False)["config"])
    model_type = cfg.pop("model_type")
    cfg.pop("_model_name_or_path", None)
    return config_embed_scale(AutoConfig.for_model(model_type, **cfg))


def _write_metadata_gguf(path: str, model_meta: dict, vocab_size: int | None) -> None:
    from gguf import GGUFValueType, GGUFWriter

    arch = model_meta["general.architecture"][2]
    w = GGUFWriter(path, arch)
    if vocab_size and f"{arch}.vocab_size" not in model_meta:   # else transformers reads it from the tokenizer
        w.add_key_value(f"{arch}.vocab_size", int(vocab_size), GGUFValueType.UINT32)
    for key, (t, item, value) in model_meta.items():
        if key == "general.architecture" or value is None:
            continue
        w.add_key_value(key, value, GGUFValueType(t), sub_type=GGUFValueType(item) if item is not None else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


__all__ = ["input_embed_scale", "config_embed_scale", "gguf_embed_scale"]
