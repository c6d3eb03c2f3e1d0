"""Which prompts are alike, and does it predict transfer?

Four similarities between prompts (each a ``"p p"`` matrix):

* ``mean_vector`` -- the cosine of the prompts' mean vectors (SPoT, Vu et al. 2022: the mean prompt as a task
  embedding);
* ``token_pairs`` -- the mean cosine over every pair of virtual tokens, one from each prompt;
* ``max_inner`` -- token-wise maximum inner product (Lin et al. 2024): for each virtual token of one prompt its
  largest inner product with any token of the other, averaged, and the two directions averaged;
* ``activation_overlap`` -- ON (Su et al., NAACL 2022, "On Transferability of Prompt Tuning"): the frozen model
  runs on each prompt alone; a feed-forward neuron is *activated* when its input to the layer's down-projection,
  averaged over the prompt's positions, is above 0; ON is the cosine between two prompts' binary activation
  vectors over all layers.

Transfer (:func:`transfer_matrix`): every prompt scored on every task on the same examples; prompt ``i`` on the
task of prompt ``j`` relative to ``j`` itself there (``acc(i on T_j) / acc(j on T_j)``, Su et al.'s relative
performance).  :func:`similarity_vs_transfer` correlates each similarity with it over the ordered pairs ``i != j``
(Spearman), with a Mantel permutation p-value (prompt identities permuted, so the dependence between pairs that
share a prompt is kept) and a bootstrap interval over prompts; Benjamini-Hochberg over the similarities.

Importing this module pulls numpy only; torch and scipy are imported inside the functions."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..exceptions import AnalyzerError

#: the similarities, in display order, with their titles
MEASURES = {"mean_vector": "cosine of mean vectors (SPoT)", "token_pairs": "mean token-pair cosine",
            "max_inner": "token-wise max inner product", "activation_overlap": "activated-neuron overlap (ON)"}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def prompt_similarity(vectors: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """For prompts given as ``"n_i d"`` matrices: ``mean_vector``, ``token_pairs`` (on the diagonal, over the
    distinct pairs of one prompt, 1.0 for a one-token prompt) and ``max_inner`` (see the module docstring).
    Raises ValueError on differing widths."""
    mats = [np.asarray(v, dtype=np.float64) for v in vectors]
    dims = {m.shape[1] for m in mats}
    if len(dims) > 1:
        raise ValueError(f"Prompts of different widths {sorted(dims)} cannot be compared.")
    means = _unit(np.stack([m.mean(axis=0) for m in mats])) if mats else np.zeros((0, 0))
    units = [_unit(m) for m in mats]
    n = len(mats)
    pairs, inner = np.zeros((n, n)), np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            c = units[a] @ units[b].T
            dots = mats[a] @ mats[b].T
            inner[a, b] = inner[b, a] = 0.5 * (dots.max(axis=1).mean() + dots.max(axis=0).mean())
            if a == b:
                k = c.shape[0]
                pairs[a, a] = 1.0 if k < 2 else float((c.sum() - np.trace(c)) / (k * (k - 1)))
            else:
                pairs[a, b] = pairs[b, a] = float(c.mean())
    return {"mean_vector": means @ means.T, "token_pairs": pairs, "max_inner": inner}


def _ffn_inputs(model) -> list:
    """The modules whose input is a decoder layer's feed-forward activation (the down-projection)."""
    from ..faithfulness.logit_lens import decoder_parts

    out = []
    for layer in decoder_parts(model)[0]:
        mlp = getattr(layer, "mlp", None) or getattr(layer, "feed_forward", None)
        proj = None
        for name in ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "w2"):
            proj = getattr(mlp, name, None) if mlp is not None else None
            if proj is not None:
                break
        if proj is None:
            raise AnalyzerError(f"Cannot find the feed-forward down-projection of {type(layer).__name__}; the "
                                "activation overlap needs a decoder whose MLP has down_proj, c_proj, fc2 or w2.")
        out.append(proj)
    return out


def activation_states(model, prompt) -> np.ndarray:
    """bool ``"neurons"``: which feed-forward neurons of every layer the frozen model activates (mean input to the
    down-projection over the prompt's positions > 0) when it runs on the soft prompt alone (``"n d"``)."""
    import torch

    from ..faithfulness._common import _prompt_matrix

    x = _prompt_matrix(prompt, model)
    got: list = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: got.append(args[0][0].float().mean(0) > 0))
             for m in _ffn_inputs(model)]
    try:
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            model(inputs_embeds=x.to(emb.device, emb.dtype).unsqueeze(0), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(got).cpu().numpy()


def activation_overlap(model, prompts: Sequence) -> np.ndarray:
    """``"p p"``: ON, the cosine between the prompts' binary activation vectors (:func:`activation_states`)."""
    states = np.stack([activation_states(model, p).astype(np.float64) for p in prompts])
    u = _unit(states)
    return u @ u.T


def transfer_matrix(model, tokenizer, prompts: Mapping[str, Any], own_tasks: Mapping[str, Any], *,
                    limit: int | None = 200, model_name: str | None = None,
                    progress: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(accuracy "p t", relative "p p", task names)``: every prompt scored on every task of ``own_tasks`` (``{prompt
    name: Task}``: the task each prompt was trained for) on the same first ``limit`` test examples, and
    ``relative[i, j] = acc(i on task of j) / acc(j on task of j)``."""
    from ..faithfulness.evaluation import score_columns

    names = list(prompts)
    tasks = list({t.name: t for t in own_tasks.values()}.values())
    scored = score_columns(model, tokenizer, dict(prompts), tasks, limit=limit, model_name=model_name,
                           progress=progress)
    acc = np.array([[scored[(n, t.name)].accuracy for t in tasks] for n in names])
    task_names = [t.name for t in tasks]
    return acc, relative_transfer(acc, task_names, [own_tasks[n].name for n in names]), task_names


def relative_transfer(accuracy: np.ndarray, task_names: Sequence[str], own_task: Sequence[str]) -> np.ndarray:
    """``"p p"``: ``relative[i, j] = acc(i on T_j) / acc(j on T_j)`` from ``accuracy`` ``"p t"`` (prompt ``i`` on
    task ``task_names[t]``) and the task each prompt was trained for (``own_task[i]``, one of ``task_names``); NaN
    where prompt ``j`` scores 0 on its own task."""
    acc = np.asarray(accuracy, np.float64)
    tix = {t: k for k, t in enumerate(task_names)}
    missing = sorted({t for t in own_task if t not in tix})
    if missing:
        raise AnalyzerError(f"Relative transfer needs every prompt's own task among the scored tasks {list(tix)}; "
                            f"{missing} not scored.")
    cols = np.array([tix[t] for t in own_task])
    on_theirs = acc[:, cols]                       # [i, j] = acc(i on T_j)
    own = np.diag(on_theirs)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(own[None, :] > 0, on_theirs / own[None, :], np.nan)


def similarity_vs_transfer(similarities: Mapping[str, np.ndarray], relative: np.ndarray, *, n_perm: int = 2000,
                           n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Per similarity: Spearman's rho with the relative transfer over the ordered pairs ``i != j``, its Mantel
    permutation p-value (one-sided: more similar, better transfer), a bootstrap 95% interval over prompts
    (:func:`analyzer.stats._matrices.mantel_family`: ``q`` is Benjamini-Hochberg over the similarities)."""
    from ..stats._matrices import mantel_family

    p = relative.shape[0]
    if p < 4:
        raise AnalyzerError(f"Similarity against transfer needs at least 4 prompts; got {p}.")
    rows = mantel_family(similarities, relative, seed=seed, n_perm=n_perm, n_boot=n_boot)
    return [{"similarity": r.pop("name"), **{k: r[k] for k in ("rho", "ci", "p", "n_pairs")}, "n_prompts": p,
             "q": r["q"], "significant": r["significant"]} for r in rows]


__all__ = ["MEASURES", "prompt_similarity", "activation_states", "activation_overlap", "transfer_matrix",
           "relative_transfer", "similarity_vs_transfer"]
