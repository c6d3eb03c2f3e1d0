"""Uploaded soft prompts: checked, named safely and written under the user cache.  No streamlit here, so every
rule is unit-testable.

Accepted: a zipped PEFT adapter directory (``.zip``), or one tensor file (``.safetensors`` or ``.npy``, read
without pickle).  Refused: pickles of any kind (``.pt .pth .bin .pkl .pickle .ckpt``, an ``adapter_model.bin``
inside a zip), anything over :data:`MAX_UPLOAD_MB`, and zips that are unsafe -- absolute paths, ``..``,
symbolic links, too many members, or more than :data:`MAX_UNZIPPED_MB` once unpacked (a zip bomb), or a member
whose compression ratio is absurd."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from io import BytesIO
from pathlib import Path, PurePosixPath

from ..cache import atomic_dir
from ..exceptions import InputFileError

MAX_UPLOAD_MB = 50
MAX_UNZIPPED_MB = 200
MAX_MEMBERS = 64
MAX_RATIO = 200          # uncompressed / compressed, per member (safetensors of floats compress ~1.1×)
TENSOR_SUFFIXES = (".safetensors", ".npy")
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib")
# the files of an adapter directory that are kept; anything else in the zip is skipped
ADAPTER_MEMBERS = ("adapter_config.json", "adapter_model.safetensors", "training_log.jsonl",
                   "snapshots.safetensors", "training_meta.json", "README.md")


def sanitize_name(name: str, *, default: str = "upload", max_len: int = 64) -> str:
    """A safe file/directory name: the last path component, letters/digits/``._-`` only, no leading dot."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")
    base = re.sub(r"_+", "_", base)[:max_len].strip("._-")
    return base or default


def _stem_and_suffix(name: str) -> tuple[str, str]:
    safe = sanitize_name(name)
    p = PurePosixPath(safe)
    return sanitize_name(p.stem), p.suffix.lower()


def save_upload(name: str, data: bytes, dest_root: str | os.PathLike, *,
                max_mb: float = MAX_UPLOAD_MB) -> Path:
    """Check and store one upload; returns the path to load (an adapter directory or a tensor file).

    Files land in ``dest_root/<content hash>/<sanitised name>``: the same upload twice is the same path."""
    stem, suffix = _stem_and_suffix(name)
    size = len(data)
    if size == 0:
        raise InputFileError(f"The upload {name!r} is empty.")
    if size > max_mb * 1024 * 1024:
        raise InputFileError(f"The upload {name!r} is {size / 2**20:.1f} MB; the limit is {max_mb:g} MB.")
    if suffix in PICKLE_SUFFIXES:
        raise InputFileError(f"The upload {name!r} is a pickle-based file ({suffix}); pickles are refused. "
                             f"Upload a .safetensors or .npy tensor, or a zipped PEFT adapter directory with "
                             f"adapter_model.safetensors.")
    if suffix not in TENSOR_SUFFIXES + (".zip",):
        raise InputFileError(f"The upload {name!r} has the extension {suffix or '(none)'!r}; expected a zipped PEFT "
                             f"adapter directory (.zip) or a tensor file ({', '.join(TENSOR_SUFFIXES)}).")
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = Path(dest_root) / digest
    if suffix == ".zip":
        target = folder / stem
        if not (target / "adapter_config.json").is_file():
            _extract_adapter_zip(data, target, name)
        return target
    if suffix == ".npy" and not data.startswith(b"\x93NUMPY"):
        raise InputFileError(f"The upload {name!r} is not a .npy file (no NumPy header).")
    target = folder / f"{stem}{suffix}"
    if not target.is_file():
        from ..cache import atomic_write_bytes

        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    return target


def _member_parts(info: zipfile.ZipInfo, upload: str) -> tuple[str, ...]:
    raw = info.filename.replace("\\", "/")
    p = PurePosixPath(raw)
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in p.parts:
        raise InputFileError(f"The zip {upload!r} contains the unsafe path {info.filename!r} (absolute or with '..'); "
                             "refused.")
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        raise InputFileError(f"The zip {upload!r} contains a symbolic link ({info.filename!r}); refused.")
    return tuple(x for x in p.parts if x not in ("", "."))


def _extract_adapter_zip(data: bytes, target: Path, upload: str) -> None:
    try:
        zf = zipfile.ZipFile(BytesIO(data))
    except zipfile.BadZipFile:
        raise InputFileError(f"The upload {upload!r} is not a valid zip file.") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputFileError(f"The zip {upload!r} has {len(infos)} members; at most {MAX_MEMBERS} are accepted.")
        files = []
        total = 0
        for info in infos:
            parts = _member_parts(info, upload)
            if info.is_dir() or not parts:
                continue
            if parts[0] == "__MACOSX" or parts[-1].startswith("._"):
                continue
            if info.flag_bits & 0x1:
                raise InputFileError(f"The zip {upload!r} is encrypted; refused.")
            total += info.file_size
            if total > MAX_UNZIPPED_MB * 2**20:
                raise InputFileError(f"The zip {upload!r} unpacks to more than {MAX_UNZIPPED_MB} MB; refused.")
            if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(1, info.compress_size):
                raise InputFileError(f"The zip {upload!r} member {info.filename!r} expands "
                                     f"{info.file_size / max(1, info.compress_size):.0f}× (a zip bomb?); refused.")
            files.append((parts, info))
        configs = [parts for parts, _ in files if parts[-1] == "adapter_config.json"]
        if len(configs) != 1:
            found = ", ".join("/".join(p) for p, _ in files[:8]) or "nothing"
            raise InputFileError(f"The zip {upload!r} must hold exactly one PEFT adapter directory (one "
                                 f"adapter_config.json); found {len(configs)} ({found}).")
        root = configs[0][:-1]
        if any(parts[:-1] == root and parts[-1] == "adapter_model.bin" for parts, _ in files) and not any(
                parts[:-1] == root and parts[-1] == "adapter_model.safetensors" for parts, _ in files):
            raise InputFileError(f"The zip {upload!r} holds adapter_model.bin, a pickle; pickles are refused. "
                                 "Save the adapter with safe_serialization=True (adapter_model.safetensors).")
        keep = [(parts[-1], info) for parts, info in files if parts[:-1] == root and parts[-1] in ADAPTER_MEMBERS]
        with atomic_dir(target) as tmp:
            for fname, info in keep:
                written = 0
                with zf.open(info) as src, open(tmp / fname, "wb") as dst:
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        written += len(block)
                        if written > info.file_size or written > MAX_UNZIPPED_MB * 2**20:
                            raise InputFileError(f"The zip {upload!r} member {info.filename!r} is larger than "
                                                 "it claims; refused.")
                        dst.write(block)


def zip_adapter(directory: str | os.PathLike) -> bytes:
    """A zip of an adapter directory for download: the adapter and its run files (never the checkpoint)."""
    d = Path(directory)
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ADAPTER_MEMBERS:
            f = d / name
            if f.is_file():
                zf.write(f, arcname=f"{sanitize_name(d.name, default='adapter')}/{name}")
    return buf.getvalue()


__all__ = ["MAX_UPLOAD_MB", "sanitize_name", "save_upload", "zip_adapter"]
