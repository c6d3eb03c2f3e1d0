"""Whether the dashboard's users may type filesystem paths and model names (no streamlit here).

The dashboard has no login.  Bound to a loopback address only this machine reaches it, and typed inputs (the
model, the prompt folder, a prompt's path, a task file) are on.  Bound anywhere else -- a LAN address, the
wildcard ``0.0.0.0``/``::``, or no address at all (Streamlit then binds every interface) -- anyone who reaches the
port could list and read files and start hub downloads through them, so they are off unless the server was
started with ``--allow-paths``: ``softprompt-analyzer app --allow-paths`` (which sets :data:`ENV_ALLOW_PATHS` for
the server) or ``streamlit run app.py -- --allow-paths``.  Uploads and the built-in choices stay available."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENV_ALLOW_PATHS = "SOFTPROMPT_ANALYZER_ALLOW_PATHS"
ALLOW_PATHS_FLAG = "--allow-paths"
_TRUE = ("1", "true", "yes", "on")


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` listens on this machine only: ``localhost`` or a loopback IP
    (``127.0.0.0/8``, ``::1``, ``::ffff:127.x.x.x``).  An empty or unset address is *not* loopback: Streamlit then
    binds every interface.  Host names other than ``localhost`` (and ``unix://`` sockets, usually behind a proxy)
    are not trusted either."""
    host = (address or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def allow_paths_requested(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the server was started with ``--allow-paths``: in the script's arguments (``streamlit run app.py --
    --allow-paths``) or as ``SOFTPROMPT_ANALYZER_ALLOW_PATHS=1`` (what the ``app`` command sets)."""
    return ALLOW_PATHS_FLAG in argv or environ.get(ENV_ALLOW_PATHS, "").strip().lower() in _TRUE


@dataclass(frozen=True)
class PathAccess:
    """Whether typed paths and model names are on; ``reason``: the one sentence that says why not."""

    allowed: bool
    reason: str | None = None


def path_access(address: str | None, *, allow_paths: bool = False) -> PathAccess:
    """What a server bound to ``address`` (Streamlit's ``server.address``) lets its users type."""
    if allow_paths or is_loopback(address):
        return PathAccess(True)
    where = (address or "").strip() or "every interface (server.address is unset)"
    return PathAccess(False, f"The server listens on {where}, so typed paths and model names are off; restart "
                             f"with {ALLOW_PATHS_FLAG} to allow them.")


__all__ = ["ENV_ALLOW_PATHS", "ALLOW_PATHS_FLAG", "is_loopback", "allow_paths_requested", "PathAccess",
           "path_access"]
