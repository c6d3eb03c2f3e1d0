"""The one statistics layer: every claim the toolkit makes is one :class:`Test` row made here.

A row compares a prompt-level statistic with its distribution under a null, made of whole pseudo-prompts:

* ``matched`` -- **the basis of claims** (:mod:`analyzer.nulls`).  For every virtual token, meaningless
  queries of several constructions that share with it what mechanically moves the neighbour measures: its top-k
  neighbour scores (how far from the vocabulary cloud, how dense the cloud is there) and its neighbours'
  frequency ranks (common words have common neighbours).  A pseudo-prompt takes one construction for all its
  positions and one matched draw per position; positions that repeat the same vector (a tiled TEXT init) repeat
  the same draw, so a prompt never gets a narrower null for repeating itself.  The null is *composite*: each
  construction that reaches the prompt is one way a meaningless prompt could have been made, and the row's p is
  the largest of the per-construction p-values (valid whichever way is the true one; see :func:`make_test`).
* ``init`` -- the prompt's own initialisation (paired: random sign flips of the per-position differences).
* ``random_vectors`` (isotropic Gaussian directions) and ``vocab_tokens`` (random vocabulary tokens, each with
  itself removed from its own neighbour list) -- **labelled references**, shown beside the claims and never
  the basis of one: the isotropic cloud lies far from where the vocabulary lives, and a real token is not a
  soft prompt.

p-values are empirical with +1 smoothing, two-sided unless a row says otherwise (task specificity is one-sided,
``greater``: "related to T" is a directional claim; a one-sided row beyond chance the other way says so in its
verdict, "lower than chance ..., described, not a claim", never "not distinguishable"); Benjamini-Hochberg
(``scipy.stats.false_discovery_control``) runs over a prompt's claim rows and gives ``q``; a row is significant
when ``q < alpha``.  Words: "higher than chance (q=...)", "lower than chance (q=...)", "not distinguishable
from chance"; ``p<0.001`` below the resolution of the null sample.  Per-position p-values are shown, with
their own correction, and never summarised as claims.

One job per module: :mod:`._rows` (the :class:`Test` row, :func:`make_test`, :func:`adjust`, the verdicts,
:class:`TestTable`, :func:`with_row`), :mod:`._pseudo` (seeds, pseudo-prompt draws, the sign-flip null,
:func:`compare_to_null`), :mod:`._measure_tests` (a per-token or set score against each null, as rows), :mod:`._intervals` (Wilson, McNemar,
paired bootstrap, per-position q) and :mod:`._format` (``format_p``).  Everything is imported from here.

Importing this package pulls numpy only (scipy loads inside the functions)."""

from __future__ import annotations

from .._params import SEED_MAX
from ._format import format_p
from ._intervals import benjamini_hochberg, mcnemar_exact, paired_bootstrap_diff, per_position_q, wilson_interval
from ._measure_tests import per_token_test, set_test
from ._pseudo import (NEIGHBOR_OVERLAP, MatchedPool, NullComparison, bootstrap_means, check_seed, compare_to_null,
                      position_groups, pseudo_prompt_draws, pseudo_prompt_means, sign_flip_null)
from ._rows import (ALPHA, CLAIM_NULLS, DIRECTIONS, NULLS, Test, TestTable, adjust, adjust_description,
                    adjust_positions, empirical_p, make_test, removal_verdict, stratified_test, verdict,
                    with_row)

__all__ = ["ALPHA", "DIRECTIONS", "NULLS", "CLAIM_NULLS", "SEED_MAX", "check_seed", "Test", "NullComparison",
           "compare_to_null", "format_p", "empirical_p", "make_test", "adjust", "verdict", "NEIGHBOR_OVERLAP",
           "position_groups", "MatchedPool", "pseudo_prompt_draws", "pseudo_prompt_means", "sign_flip_null",
           "per_position_q", "TestTable", "wilson_interval", "mcnemar_exact", "paired_bootstrap_diff",
           "benjamini_hochberg", "removal_verdict", "adjust_positions", "stratified_test", "adjust_description",
           "bootstrap_means", "per_token_test", "set_test", "with_row"]
