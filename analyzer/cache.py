"""The user cache: where dequantized matrices, token strings, FAISS indexes and UMAP layouts live.

Keys are content hashes of the source files, so a changed file never reuses a stale entry.  Hashing a
100 MB file costs ~0.1 s, so the hash itself is remembered per (path, size, mtime) in a small index.
Every file the toolkit writes goes through :func:`atomic_path` (or :func:`atomic_write_text` /
:func:`atomic_write_bytes`): written to a temporary file in the same directory, then ``os.replace``d -- with the
rule of :func:`write_target` for what is already there (a file keeps its mode, a symbolic link is written through,
a FIFO or device is never replaced, a folder is refused)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
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


def write_target(target: str | os.PathLike) -> tuple[Path, os.stat_result | None, bool]:
    """Where a write to ``target`` lands, by the rule every file the toolkit writes follows (reports, adapters,
    logs, checkpoints, exports, caches): ``(destination, its stat or None when new, write_through)``.

    * a new path or a regular file: written atomically at that path (``write_through`` False);
    * a symbolic link: followed to its final target, which is written by the same rule (the link stays a link);
    * a FIFO or a character device (``/dev/null``, ``/dev/stdout``): written through, opened as it is (never
      replaced by a regular file);
    * a folder, a block device, a socket: refused (AnalyzerError, one line);
    * a parent path that is a file: NotADirectoryError naming it."""
    from .exceptions import AnalyzerError

    target = Path(target)
    dest = Path(os.path.realpath(target)) if target.is_symlink() else target
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        parent = dest.parent
        if os.path.lexists(parent) and not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent)) from None
        return dest, None, False
    kind = st.st_mode
    if stat.S_ISREG(kind):
        return dest, st, False
    if stat.S_ISFIFO(kind) or stat.S_ISCHR(kind):
        return dest, st, True
    what = ("a folder" if stat.S_ISDIR(kind) else "a block device" if stat.S_ISBLK(kind)
            else "a socket" if stat.S_ISSOCK(kind) else "not a regular file")
    link = f" (a link to {str(dest)!r})" if dest != target else ""
    hint = f"e.g. {str(target / 'out.txt')!r}" if stat.S_ISDIR(kind) else "a regular file"
    raise AnalyzerError(f"Cannot write to {str(target)!r}{link}: it is {what}, which is never replaced; give the "
                        f"path of a file to write ({hint}).")


def _umask() -> int:
    """The process umask, read without setting it where Linux allows (setting it races with other threads)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it lands at ``target`` by :func:`write_target`'s rule: a new or
    regular file is replaced atomically (an existing file keeps its permission bits and, where allowed, its
    owner), a symbolic link is written through to its target, a FIFO or character device receives the bytes
    (opened as it is), a folder, block device or socket is refused before anything is written."""
    dest, st, through = write_target(target)
    if through:     # not atomic, and not beside a device: a private temporary file, copied in on success
        fd, tmp = tempfile.mkstemp(prefix="softprompt-analyzer-", suffix=".tmp")
        os.close(fd)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if through:
            import shutil

            with open(tmp_path, "rb") as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:       # set after the caller wrote (a writer may have made the file anew)
            if st is not None:      # the file it replaces keeps its mode (and owner, when we may set it)
                os.chmod(tmp_path, stat.S_IMODE(st.st_mode))
                if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                    with contextlib.suppress(OSError):
                        os.chown(tmp_path, st.st_uid, st.st_gid)
            else:                   # mkstemp makes 0600; give a new file the permissions open() would
                os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, dest)
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
