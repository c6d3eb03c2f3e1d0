"""The logic behind Explore's linked views, free of streamlit (unit-tested directly): display names, the
isolation state and what a click or a table pick does to it, the rows of the neighbour table, the side list of
distances, search results, which virtual tokens are nearest to a chosen token, and the map's neighbours with
byte and special tokens left out."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def display_names(labels: Sequence[str], counts: Sequence[int], names: Sequence[Sequence[str]]) -> list[str]:
    """One name per prompt, the same in the sidebar, the legend and the tables: a source holding one prompt
    is called by its sidebar label; a source holding several, ``label/name`` for each."""
    out = []
    for label, n, ps in zip(labels, counts, names):
        out.extend([label] if n == 1 else [f"{label}/{p}" for p in ps])
    return out


def isolation_index(names: Sequence[str], isolate: tuple[str, int] | None,
                    sizes: Sequence[int]) -> tuple[int, int] | None:
    """``(prompt index, position)`` of the isolated virtual token ``isolate = (name, position)``; None when
    nothing is isolated or the prompt is no longer selected (or has fewer positions)."""
    if not isolate:
        return None
    name, pos = isolate
    if name not in names:
        return None
    j = list(names).index(name)
    return (j, int(pos)) if 0 <= int(pos) < sizes[j] else None


def after_click(current: tuple[str, int] | None, points: Sequence[Mapping[str, Any]],
                names: Sequence[str]) -> tuple[str, int] | None:
    """The isolation after a click on the map: the first clicked point that is a virtual token or a neighbour
    (its ``customdata`` starts with ``[prompt, position]``) isolates that virtual token; clicking the isolated
    one again, or clicking empty space (no points), leaves isolation."""
    for pt in points:
        cd = pt.get("customdata")
        if isinstance(cd, (list, tuple)) and len(cd) >= 2:
            j, i = int(cd[0]), int(cd[1])
            if not 0 <= j < len(names):
                continue
            picked = (names[j], i)
            return None if current == picked else picked
    return None if not points else current


def after_row_pick(current: tuple[str, int] | None, name: str, rows: Sequence[int]) -> tuple[str, int] | None:
    """The isolation after picking a row of ``name``'s neighbour table (row r is position r): isolates it; an
    emptied pick leaves isolation if it was this prompt's."""
    if rows:
        return (name, int(rows[0]))
    return None if current and current[0] == name else current


def neighbour_rows(tokens) -> list[dict]:
    """The neighbour table of one prompt (its :class:`~analyzer.results.NeighborRow` s, a report's
    ``prompt.tokens``): ``v``, ``norm ×median`` and one column per rank, ``token  score``."""
    from ..results import NeighborRow

    rows = []
    for t in tokens:
        t = NeighborRow.from_dict(t) if isinstance(t, Mapping) else t
        row = {"v": f"v{t.index}", "norm ×median": round(float(t.norm_ratio), 2) if t.norm_ratio is not None else None}
        for r, n in enumerate(t.neighbors, 1):
            row[f"#{r}"] = f"{n.token}  {n.score:.2f}"
        rows.append(row)
    return rows


def distance_rows(prompt, vocab, position: int, metric: str) -> list[dict]:
    """The side list of an isolated virtual token (a ``ProjectedPrompt``): rank, token, id, the true cosine and
    (under CSLS) the score that ranked it."""
    out = []
    cos = prompt.neighbor_cosines
    for r, (t, s) in enumerate(zip(prompt.neighbor_ids[position], prompt.neighbor_scores[position]), 1):
        row = {"#": r, "token": vocab.tokens[int(t)], "id": int(t),
               "cosine": round(float(cos[position, r - 1] if cos is not None else s), 3)}
        if metric != "cosine":
            row[metric] = round(float(s), 3)
        out.append(row)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def nearest_virtual(vocab, prompts: Sequence[tuple[str, Any]], token_id: int, *, top: int = 8,
                    neighbor_ids: Mapping[str, np.ndarray] | None = None) -> list[dict]:
    """Which virtual tokens are nearest (cosine) to vocabulary token ``token_id``: rows ``prompt``, ``v``,
    ``cosine`` and ``rank`` (where the token stands among that virtual token's neighbours, when it is one of
    them; ``neighbor_ids`` maps a prompt's name to its ``"n_virtual k"`` ids), best first, at most ``top``."""
    q = _unit(np.asarray(vocab.embeddings)[int(token_id)][None])[0]
    rows = []
    for name, p in prompts:
        cos = _unit(p.vectors) @ q
        ids = (neighbor_ids or {}).get(name)
        for i, c in enumerate(cos):
            rank = None
            if ids is not None and i < ids.shape[0]:
                hit = np.flatnonzero(ids[i] == int(token_id))
                rank = int(hit[0]) + 1 if hit.size else None
            rows.append({"prompt": name, "v": f"v{i}", "cosine": round(float(c), 3),
                         "rank": f"#{rank}" if rank else "", "_pos": i})
    rows.sort(key=lambda r: -r["cosine"])
    return rows[:top]


def virtual_label(name: str, v: str, chars: int | None = None) -> str:
    """``v14 · sentiment-random``: a virtual token of a named prompt as the inspector's tables show it.  When it
    does not fit on one line of ``chars`` characters, a space after each ``/`` lets a folder name wrap between its
    parts (the grid breaks lines at spaces only, and cuts a word longer than the column)."""
    label = f"{v} · {name}"
    return label if chars is None or len(label) <= chars else label.replace("/", "/ ")


def wrapped_lines(text: str, chars: int) -> int:
    """The lines ``text`` takes in a grid cell ``chars`` wide: greedy breaks at spaces (never at hyphens), a longer
    word cut -- :func:`textwrap.wrap`'s rule."""
    import textwrap

    return len(textwrap.wrap(str(text), chars, break_on_hyphens=False)) or 1


def search_rows(vocab, ids: Sequence[int], prompts: Sequence[tuple[str, Any]], chars: int | None = None) -> list[dict]:
    """The search result list: ``token``, ``id`` and the nearest virtual token of the selected prompts (its
    :func:`virtual_label`) and its ``cosine``, for each matching token id."""
    if not ids:
        return []
    q = _unit(np.asarray(vocab.embeddings)[np.asarray(ids, dtype=np.int64)])
    best = np.full(len(ids), -np.inf)
    where = [""] * len(ids)
    for name, p in prompts:
        cos = q @ _unit(p.vectors).T            # "n_ids n_virtual"
        if cos.size == 0:
            continue
        arg = cos.argmax(axis=1)
        val = cos[np.arange(len(ids)), arg]
        for n in np.flatnonzero(val > best):
            best[n], where[n] = val[n], virtual_label(name, f"v{int(arg[n])}", chars)
    return [{"token": vocab.tokens[int(t)], "id": int(t), "nearest virtual token": where[n],
             "cosine": round(float(best[n]), 3) if np.isfinite(best[n]) else None} for n, t in enumerate(ids)]


def readable_neighbours(pmap, vectors: Sequence[np.ndarray], index, vocab, k: int, hidden: np.ndarray, place):
    """``pmap`` (a :class:`~analyzer.projection.PromptMap`) with every virtual token's ``k`` neighbours taken
    from the *readable* tokens only: the ``hidden`` rows (bool ``"vocab"``, e.g.
    :func:`analyzer.vocab_map.hidden_tokens`: bytes such as ``<0x85>``, specials) are skipped and the next ones
    move up, with their scores, true cosines and places (``place(ids) -> "n c"``, e.g. the vocabulary map's
    coordinates).  ``vectors``: each prompt's ``"n_virtual d"`` matrix, in the map's order.  A prompt none of
    whose neighbours is hidden is returned as it is.  The measures and tables keep every token: this only
    changes what the map draws and lists."""
    import dataclasses

    if len(vectors) != len(pmap.prompts):
        raise ValueError(f"Expected one matrix per prompt of the map ({len(pmap.prompts)}); got {len(vectors)}.")
    hidden = np.asarray(hidden, dtype=bool)
    hidden_ids = np.flatnonzero(hidden)
    if hidden_ids.size == 0:
        return pmap
    key = (id(pmap), int(k), id(index), int(hidden_ids.size), int(hidden_ids.sum()))
    if key in _READABLE and _READABLE[key][0] is pmap:      # the page's rerun: the same cached map, computed once
        return _READABLE[key][1]
    emb = np.asarray(vocab.embeddings)
    n_index = int(getattr(getattr(index, "ids_", None), "size", vocab.size))
    out = []
    for p, vec in zip(pmap.prompts, vectors):
        if not np.isin(p.neighbor_ids, hidden_ids).any():
            out.append(p)
            continue
        vec = np.asarray(vec, dtype=np.float32)
        # a few more than k first (enough unless bytes crowd a row), all that could be hidden only then
        for kk in (min(n_index, 4 * k + 16), min(n_index, k + hidden_ids.size)):
            scores, ids = index.kneighbors(vec, kk)
            if (np.count_nonzero(~hidden[ids], axis=1) >= min(k, n_index)).all():
                break
        order = np.argsort(hidden[ids], axis=1, kind="stable")[:, :k]        # readable ones first, rank kept
        ids = np.take_along_axis(ids, order, axis=1).astype(np.int64)
        scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
        coords = np.asarray(place(ids.ravel()), dtype=np.float32).reshape(ids.shape[0], ids.shape[1], -1)
        cos = np.einsum("nd,nkd->nk", _unit(vec), _unit(emb[ids.ravel()]).reshape(ids.shape[0], ids.shape[1], -1))
        out.append(dataclasses.replace(p, neighbor_ids=ids, neighbor_scores=scores, neighbor_coords=coords,
                                       neighbor_cosines=cos.astype(np.float32)))
    result = dataclasses.replace(pmap, prompts=tuple(out))
    if len(_READABLE) >= 8:
        _READABLE.clear()
    _READABLE[key] = (pmap, result)          # holds pmap, so its id cannot be reused while the entry lives
    return result


_READABLE: dict = {}


def report_basename(labels: Sequence[str], limit: int = 80) -> str:
    """A file name stem for a report of the prompts ``labels``: their sanitised names joined by ``_`` while they
    fit in ``limit`` characters (whole names only, never cut mid-name), then ``_and-N-more``."""
    from ._uploads import sanitize_name

    names = [sanitize_name(str(lab).replace("/", "-"), default="prompt") for lab in labels]
    if not names:
        return "report"
    out = names[0][:limit]
    for i, n in enumerate(names[1:], 1):
        rest = len(names) - i - 1
        tail = f"_and-{rest}-more" if rest else ""
        if len(out) + 1 + len(n) + len(tail) > limit:
            return f"{out}_and-{len(names) - i}-more"
        out += "_" + n
    return out


__all__ = ["report_basename", "display_names", "isolation_index", "after_click", "after_row_pick", "neighbour_rows",
           "distance_rows",
           "nearest_virtual", "search_rows", "readable_neighbours"]
