"""Which model a vocabulary (or a frozen model) was read from, against the one that was named for it.

An adapter names its base model (``base_model_name_or_path``), a user names one with ``--model`` (the dashboard's
Model box), and an embedded copy is read for every checkpoint of its family (``analyzer.models.HUB_ALIASES``).
:func:`model_provenance` records what was named, what was used, and whether the one is a *stand-in* for the other:

* another checkpoint of the same family (an adapter trained on ``HuggingFaceTB/SmolLM2-135M`` read against the
  embedded SmolLM2-135M-Instruct),
* a quantised copy of the named checkpoint (a GGUF whose rows are stored in fewer bits than float16),
* or a different model altogether (``--model`` chosen in place of the adapter's base).

An exact match is not a stand-in: the embedded name itself (``smollm2-135m``), the same file or folder, or an
unquantised folder or file named like the checkpoint.  :func:`provenance_sentence` is the one sentence that every
renderer (``report``, ``analyze``, ``evaluate``, ``importance``, ``describe``) and the dashboard show.

Nothing here reads a model's weights; a user's GGUF file is opened only for its header when the type of its
embedding rows is not known yet."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

FAMILY = "another checkpoint of the same family"
OTHER = "a different model"
QUANTISED = "quantised"
_FLOAT_TYPES = {"F64", "F32", "F16", "BF16"}
_QUANT_SUFFIX = re.compile(r"[.\-_](i?q\d\w*|bf16|f16|f32)$", re.IGNORECASE)


def _stem(name: str) -> str:
    """A checkpoint's bare name: the last path component, lower case, without ``.gguf`` or a quantisation suffix
    (``HuggingFaceTB/SmolLM2-135M-Instruct`` and ``SmolLM2-135M-Instruct.Q4_1.gguf`` share
    ``smollm2-135m-instruct``)."""
    base = re.split(r"[\\/]", str(name).rstrip("/\\"))[-1].lower()
    base = base[:-5] if base.endswith(".gguf") else base
    return _QUANT_SUFFIX.sub("", base)


def _family(name: str) -> str | None:
    """The embedded model whose family ``name`` belongs to (an embedded name, a hub id of the family, or a file or
    folder named like one of its checkpoints); None when unknown."""
    from .models import EMBEDDED_MODELS, HUB_ALIASES

    low = str(name).lower()
    if low in EMBEDDED_MODELS:
        return low
    if _embedded_of_cache(name):
        return _embedded_of_cache(name)
    if low in HUB_ALIASES:
        return HUB_ALIASES[low]
    stem = _stem(name)
    return next((key for hub, key in HUB_ALIASES.items() if _stem(hub) == stem), None)


def _embedded_of_cache(name: str) -> str | None:
    """The embedded model whose dequantised copy (``load_frozen_model``'s cache folder ``models/hf-<key>``) is the
    folder ``name``: an adapter trained with PEFT on that copy names it, and it holds the embedded model's rows."""
    p = Path(str(name)).expanduser()
    if not p.name.startswith("hf-"):
        return None
    from .cache import cache_dir, file_key
    from .models import EMBEDDED_MODELS, _embedded_parts

    try:
        models = cache_dir() / "models"
        if p.resolve().parent != models.resolve():
            return None
        for key, m in EMBEDDED_MODELS.items():
            parts = _embedded_parts(m)
            f = parts[0] if parts and len(parts) == 1 else models / m.filename   # chunks: the assembled file
            if f.is_file() and p.name == f"hf-{file_key(f)}":
                return key
    except OSError:
        return None
    return None


def _gguf_embedding_type(path: Path) -> str | None:
    """The type of ``token_embd.weight`` in a GGUF, from its header; None when it cannot be read."""
    try:
        from gguf import GGMLQuantizationType

        from .loaders._vocab import _read_gguf_lean

        t = _read_gguf_lean(path).embd_type
        return GGMLQuantizationType(t).name if t is not None else None
    except Exception:  # noqa: BLE001 - a header the lean parser does not handle: the type stays unsaid
        return None


def _used(requested: str | None, quantization: str | None) -> dict[str, Any]:
    """What a model name resolves to, from names and the registry only (no weights are read)."""
    from .models import DEFAULT_MODEL, EMBEDDED_MODELS, HUB_ALIASES

    name = requested or DEFAULT_MODEL
    key = _embedded_of_cache(name) or HUB_ALIASES.get(name.lower(), name.lower())
    if key in EMBEDDED_MODELS:
        m = EMBEDDED_MODELS[key]
        return {"kind": "embedded", "used": key, "checkpoint": m.checkpoint or key, "quantization": m.quantization,
                "embedding_quantization": quantization or m.embedding_quantization or None}
    p = Path(name).expanduser()
    ggufs = sorted(p.glob("*.gguf")) if p.is_dir() and not (p / "config.json").is_file() else []
    if (p.is_file() and p.suffix.lower() == ".gguf") or len(ggufs) == 1:
        f = p if p.is_file() else ggufs[0]
        return {"kind": "gguf", "used": name, "checkpoint": str(f), "quantization": None,
                "embedding_quantization": quantization or _gguf_embedding_type(f)}
    return {"kind": "hf_dir" if p.is_dir() else "hub", "used": name, "checkpoint": name, "quantization": None,
            "embedding_quantization": None}


def _quantised(u: dict[str, Any]) -> bool:
    q = u.get("embedding_quantization") or u.get("quantization")
    return bool(q) and str(q).upper() not in _FLOAT_TYPES


def _same_place(a: str, b: str) -> bool:
    try:
        pa, pb = Path(a).expanduser(), Path(b).expanduser()
        return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
    except OSError:
        return False


def _stand_in_reasons(named: str, u: dict[str, Any]) -> list[str]:
    """Why the model used is not exactly ``named`` (empty when it is)."""
    if u["kind"] == "embedded":
        if named.lower() == u["used"] or _embedded_of_cache(named) == u["used"]:
            return []                      # the embedded copy itself was named (or its dequantised cache)
    elif named == u["used"] or _same_place(named, u["used"]) or _same_place(named, u["checkpoint"]):
        return []                          # the very file, folder or hub id
    reasons = []
    if _stem(named) != _stem(u["checkpoint"]):
        fam = _family(named)
        reasons.append(FAMILY if fam and fam == (u["used"] if u["kind"] == "embedded" else _family(u["checkpoint"]))
                       else OTHER)
    if _quantised(u):
        reasons.append(QUANTISED)
    return reasons


def model_provenance(requested: str | None, prompts: Iterable = (), *, quantization: str | None = None,
                     used: str | None = None, what: str = "vocabulary") -> dict[str, Any]:
    """What was named for ``prompts`` and what was used to read them, as a JSON-ready dict.

    ``requested``: the name the vocabulary or model was loaded from (what ``analyzer.models.model_for_prompts``
    returned: ``--model``, else the adapters' ``base_model_name_or_path``; None for the default).
    ``prompts``: the SoftPrompts read (an adapter's ``base_model`` is what it names; raw tensors name nothing).
    ``quantization``: the type of the embedding rows when known (``Vocabulary.quantization``).
    ``used``: the model read when nothing was requested and it is not the default (a vocabulary built in memory).
    ``what``: the sentence's first word: ``vocabulary`` (the neighbour readings) or ``model`` (readings that run it).

    Keys: ``requested``, ``named`` and ``named_by`` (``adapter``, ``model``: the name given, or ``default``),
    ``used`` (an embedded name, a path or a hub id), ``kind`` (``embedded``, ``gguf``, ``hf_dir``, ``hub``),
    ``checkpoint`` (the checkpoint the used files hold), ``quantization`` (the GGUF file type),
    ``embedding_quantization``, ``embedded``, ``stand_in`` and ``stand_in_for`` (one ``{"name", "named_by",
    "reasons"}`` per named model that the used one stands in for) and ``sentence``."""
    requested = str(requested) if requested else None
    u = _used(requested or used, quantization)
    prompts = list(prompts)
    bases = sorted({p.base_model for p in prompts if getattr(p, "kind", "TENSOR") != "TENSOR" and p.base_model})
    if bases:
        named, by = bases, "adapter"
    elif requested:
        named, by = [requested], "model"
    else:
        named, by = [], "default"
    stand_in_for = []
    for n in named:
        reasons = _stand_in_reasons(n, u)
        if reasons:
            stand_in_for.append({"name": n, "named_by": by, "reasons": reasons})
    info = {"requested": requested, "named": named[0] if len(named) == 1 else (named or None), "named_by": by,
            "used": u["used"], "kind": u["kind"], "checkpoint": u["checkpoint"], "quantization": u["quantization"],
            "embedding_quantization": u["embedding_quantization"], "embedded": u["kind"] == "embedded",
            "stand_in": bool(stand_in_for), "stand_in_for": stand_in_for}
    info["sentence"] = provenance_sentence(info, what)
    return info


def model_line(provenance: dict[str, Any] | None) -> str | None:
    """The sentence a result carries (None when it was computed without names, e.g. from a model object)."""
    return provenance.get("sentence") if isinstance(provenance, dict) else None


def vocab_provenance(vocab, prompts: Iterable = (), *, what: str = "vocabulary") -> dict[str, Any]:
    """:func:`model_provenance` of a loaded ``Vocabulary`` (its ``requested`` name and ``quantization``)."""
    requested = getattr(vocab, "requested", None)
    return model_provenance(requested, prompts, quantization=getattr(vocab, "quantization", None),
                            used=None if requested else vocab.name, what=what)


def _what_it_is(reasons: list[str]) -> str:
    if reasons == [QUANTISED]:
        return "a quantised copy"
    return ", ".join(reasons)


def provenance_sentence(info: dict[str, Any], what: str = "vocabulary") -> str:
    """The one sentence: which model's ``what`` (``vocabulary`` or ``model``) is used and, when it stands in for the
    model that was named, for which one and how.  ``info`` is :func:`model_provenance`'s dict."""
    q, eq = info.get("quantization"), info.get("embedding_quantization")
    if info.get("kind") == "embedded":
        short = str(info.get("checkpoint") or info["used"]).split("/")[-1]
        stored = f"GGUF {q}" + (f", token embeddings {eq}" if eq and eq != q else "") if q else "GGUF"
        used = f"{short} ({stored}, dequantised), the embedded {info['used']}"
    elif info.get("kind") == "gguf":
        stored = f"GGUF, token embeddings {eq}" if eq else "GGUF"
        used = f"{info['used']} ({stored}{', dequantised' if eq and str(eq).upper() not in _FLOAT_TYPES else ''})"
    elif info.get("kind") == "hf_dir":
        used = f"{info['used']} (a Hugging Face folder)"
    else:
        used = f"{info['used']} (from the hub)"
    parts = []
    for s in info.get("stand_in_for") or []:
        by = ("named by an adapter" if isinstance(info.get("named"), list) else "named by the adapter") \
            if s["named_by"] == "adapter" else "asked for"
        parts.append(f"a stand-in for {s['name']} {by}: {_what_it_is(s['reasons'])}")
    return f"{what}: {used}" + (" — " + "; ".join(parts) if parts else "")


__all__ = ["model_provenance", "vocab_provenance", "provenance_sentence", "model_line", "FAMILY", "OTHER", "QUANTISED"]
