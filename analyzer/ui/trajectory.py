"""Trajectory: how a prompt moved during training -- drawn on the Explore map itself (the same 2-D UMAP layout,
its density and cluster names) from ``snapshots.safetensors``, at full width; one step slider picks the
snapshot shown and marks that step on the loss/accuracy curves (``training_log.jsonl``) and on the
training-dynamics panels (``analyzer.dynamics``: when each init token leaves the top-k, tightness and
relatedness per snapshot)."""

from __future__ import annotations

import streamlit as st

from . import _sources, resources
from ._common import Selection, guard


@st.cache_resource(max_entries=8, show_spinner="Reading the neighbours of every snapshot…")
def _dynamics(model: str, path: str, stamp: tuple, k: int, task: str | None):
    from ..dynamics import training_dynamics

    return training_dynamics(path, resources.neighbor_index(model, "cosine"), k=k, task=task or None)


def _dynamics_section(sel: Selection, label: str, path: str, step: int | None = None) -> None:
    from ..plotting import plot_training_dynamics

    info = _sources.run_info(path)
    task = info.task if info.task in _builtin_tasks() else (sel.task if sel.task in _builtin_tasks() else None)
    st.subheader("Training dynamics")
    st.caption(f"Per snapshot, the top-{sel.k} vocabulary neighbours (cosine) of every position: when the init "
               "token leaves them, how tight they are, and what share the model-space reading calls related to "
               f"{task or 'the task (no built-in task known for this run)'}. A description of this run's path; "
               "the claims about the final prompt are in Explore's table of tests.")
    with guard("the training dynamics"):
        dyn = _dynamics(sel.model, path, _sources.stamp(path), int(sel.k), task)
        s = dyn.summary()
        cols = st.columns(4)
        cols[0].metric("positions whose init token left", f"{s['positions_left']} / {s['positions_with_init_token']}")
        cols[1].metric("median leave step", "—" if s["median_leave_step"] is None else f"{s['median_leave_step']:.0f}")
        t0, t1 = s["tightness"]
        cols[2].metric("tightness, first → last", f"{t0:.3f} → {t1:.3f}")
        if "relatedness" in s and None not in s["relatedness"]:
            r0, r1 = s["relatedness"]
            cols[3].metric("related share, first → last", f"{r0:.2f} → {r1:.2f}")
        st.plotly_chart(plot_training_dynamics(dyn, mark_step=step, height=620,
                                               title=f"{label}: training dynamics"),
                        key="traj_dynamics", config={"displaylogo": False})


def _builtin_tasks():
    from ..tasks import BUILTIN_TASKS

    return BUILTIN_TASKS


def trajectory(sel: Selection) -> None:
    from ..plotting import plot_training_curves, plot_trajectory

    runs = {lab: path for lab, (path, _) in zip(sel.labels, sel.sources) if _sources.run_info(path).has_snapshots}
    if not runs:
        st.info("None of the selected prompts has training snapshots (snapshots.safetensors, written by "
                "analyzer.training). Select a sample prompt or one trained in the Train section.")
        return
    label = st.selectbox("Training run", list(runs), key="traj_run")
    path = runs[label]
    step = None
    with guard("the trajectory"):
        snaps, steps, coords = resources.trajectory(sel.model, path, _sources.stamp(path))
        step = st.select_slider("Step", options=list(steps), value=steps[-1], key=f"traj_step_{label}",
                                help="The snapshot the map shows; the same step is marked on the training curves "
                                     "and the dynamics panels below. Play animates the map from there.")
        fig = plot_trajectory(resources.layout(sel.model, 2), snaps, steps=steps, coords=coords, name=label,
                              index=resources.neighbor_index(sel.model, "cosine"), step=step,
                              vocab_map=resources.vocab_map(sel.model, 2), height=640,
                              title=f"{label}: {len(steps)} snapshots, step {steps[0]} → {steps[-1]}")
        st.plotly_chart(fig, key="trajectory", width="stretch", config={"displaylogo": False, "scrollZoom": True})
        st.caption("On the Explore map's own projection (the same UMAP layout, density and cluster names): "
                   f"hollow diamonds are step {steps[0]}, filled ones the chosen step, lines each token's path.")
    if _sources.run_info(path).has_log:
        with guard("the training curves"):
            from ..training import read_training_log

            rows = read_training_log(path)
            chance = None
            info = _sources.run_info(path)
            if info.task:
                try:
                    chance = 1.0 / resources.task(info.task).num_labels
                except Exception:  # noqa: BLE001 — a user task file that moved: no chance line
                    chance = None
            st.plotly_chart(plot_training_curves(rows, chance=chance, mark_step=step, height=300,
                                                 title="Training"),
                            key="traj_curves", config={"displaylogo": False})
    _dynamics_section(sel, label, path, step)
