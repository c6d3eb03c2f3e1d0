"""The user cache: where dequantized matrices, token strings, FAISS indexes and UMAP layouts live.

Keys are content hashes of the source files, so a changed file never reuses a stale entry.  Hashing a
100 MB file costs ~0.1 s, so the hash itself is remembered per (path, size, mtime) in a small index.
Every write is atomic: written to a temporary file in the same directory, then ``os.replace``d."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

_ENV = "SOFTPROMPT_ANALYZER_CACHE"


def cache_dir() -> Path:
    """The cache root: ``$SOFTPROMPT_ANALYZER_CACHE`` or the platform's user cache dir."""
    env = os.environ.get(_ENV)
    if env:
        root = Path(env)
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("softprompt-analyzer"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def entry_dir(*parts: str) -> Path:
    """A sub-directory of the cache, created on demand."""
    d = cache_dir().joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _hash_file(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_key(*paths: str | os.PathLike) -> str:
    """Content hash of one or more files (order matters), memoised by path, size and mtime."""
    memo_path = cache_dir() / "hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    h = hashlib.blake2b(digest_size=16)
    changed = False
    for p in paths:
        p = Path(p).resolve()
        st = p.stat()
        stamp = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        digest = memo.get(stamp)
        if digest is None:
            digest = _hash_file(p)
            memo[stamp] = digest
            changed = True
        h.update(digest.encode())
    if changed:
        with contextlib.suppress(OSError):
            atomic_write_text(memo_path, json.dumps(memo))
    return h.hexdigest()


def text_key(*parts: object) -> str:
    """A short stable hash of some parameters (for derived cache entries)."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``target``; on success it replaces ``target`` (a previous
    directory there is removed first), so readers never see a half-written directory."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def read_npz(path: str | os.PathLike) -> dict | None:
    """Every array of an ``.npz`` cache entry (read eagerly, pickles refused), or None when it is missing or
    damaged (the caller rebuilds it)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None
