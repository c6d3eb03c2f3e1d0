"""Trajectory: how a prompt moved during training -- an animation over the map from ``snapshots.safetensors``
and the loss/accuracy curves from ``training_log.jsonl``."""

from __future__ import annotations

import streamlit as st

from . import _sources, resources
from ._common import Selection, guard


def trajectory(sel: Selection) -> None:
    from ..plotting import plot_training_curves, plot_trajectory

    runs = {lab: path for lab, (path, _) in zip(sel.labels, sel.sources) if _sources.run_info(path).has_snapshots}
    if not runs:
        st.info("None of the selected prompts has training snapshots (snapshots.safetensors, written by "
                "analyzer.training). Select a sample prompt or one trained in the Train section.")
        return
    label = st.selectbox("Training run", list(runs), key="traj_run")
    path = runs[label]
    with guard("the trajectory"):
        snaps, steps, coords = resources.trajectory(sel.model, path, _sources.stamp(path))
        fig = plot_trajectory(resources.layout(sel.model, 2), snaps, steps=steps, coords=coords, name=label,
                              index=resources.neighbor_index(sel.model, "cosine"), height=600,
                              title=f"{label}: {len(steps)} snapshots, step {steps[0]} → {steps[-1]}")
        st.plotly_chart(fig, key="trajectory", config={"displaylogo": False})
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
            st.plotly_chart(plot_training_curves(rows, chance=chance, height=300, title="Training"),
                            key="traj_curves", config={"displaylogo": False})
