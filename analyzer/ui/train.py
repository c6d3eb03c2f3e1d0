"""Train: prompt tuning on the frozen model in a background thread, with a live loss/accuracy chart and a stop
button.  A rerun of the page (or another tab) finds the running job again; it never starts a second one.
The result is a PEFT adapter in the runs folder, selectable at once as ``trained/<name>``."""

from __future__ import annotations

import time

import streamlit as st

from . import _sources, resources
from ._common import Selection, guard
from ._uploads import sanitize_name
from .sidebar import select_prompt


def train(sel: Selection) -> None:
    from ..training import INIT_MODES

    runner = resources.training_runner()
    job = runner.get(st.session_state.get("job_id")) or runner.active()
    busy = job is not None and job.running
    tasks = list(resources.task_names())
    with st.form("train_form", border=True):
        st.markdown(f"Train a soft prompt on **{sel.model}** (only the prompt learns; the model stays frozen).")
        c1, c2, c3 = st.columns(3)
        task = c1.selectbox("Task", tasks, key="train_task",
                            index=tasks.index(sel.task) if sel.task in tasks else 0)
        init = c2.selectbox("Initialisation", list(INIT_MODES), key="train_init",
                            index=list(INIT_MODES).index("labels") if "labels" in INIT_MODES else 0,
                            help="labels: the label words; text: the init text (default: the task's instruction); "
                                 "vocab: random vocabulary tokens; random: random vectors.")
        n_virtual = c3.number_input("Virtual tokens", 1, 100, 10, key="train_tokens")
        c4, c5, c6 = st.columns(3)
        steps = c4.number_input("Steps", 5, 5000, 100, step=5, key="train_steps")
        lr = c5.number_input("Learning rate", 1e-4, 1.0, 0.03, format="%.4f", key="train_lr")
        batch = c6.number_input("Batch size", 1, 64, 8, key="train_batch")
        init_text = st.text_input("Init text (init = text only; empty: the task's instruction)", key="train_text")
        name = st.text_input("Name", placeholder=f"{task}-{init}-{n_virtual}", key="train_name")
        submitted = st.form_submit_button("Start training", type="primary", disabled=busy)
    if submitted:
        with guard("starting the run"):
            job = _start(sel, runner, task=task, init=init, n_virtual=int(n_virtual), steps=int(steps),
                         lr=float(lr), batch=int(batch), init_text=init_text.strip() or None,
                         name=name.strip() or f"{task}-{init}-{int(n_virtual)}")
    if job is not None:
        _progress_panel(job.id)
    past = [j for j in runner.jobs() if job is None or j.id != job.id]
    if past:
        with st.expander(f"Earlier runs on this server ({len(past)})"):
            for j in past:
                st.write(f"**{j.name}** — {j.status}, step {j.step}/{j.total_steps} → `{j.out}`")


def _start(sel: Selection, runner, *, task, init, n_virtual, steps, lr, batch, init_text, name):
    from ..training import TrainConfig

    base = sanitize_name(name, default="prompt")
    root = _sources.runs_dir()
    out, i = root / base, 2
    while out.exists():
        out, i = root / f"{base}-{i}", i + 1
    config = TrainConfig(model=sel.model, task=task, out=str(out), num_virtual_tokens=n_virtual,
                         prompt_tuning_init=init, prompt_tuning_init_text=init_text if init == "text" else None,
                         steps=steps, lr=lr, batch_size=batch, eval_every=max(5, steps // 5), eval_examples=100,
                         snapshot_every=max(1, steps // 25), checkpoint_every=max(5, steps // 4))
    with st.spinner("Loading the frozen model (shared by every session; first time ~30 s)…"):
        model, tok = resources.frozen_model(sel.model)
    job = runner.start(config, model=model, tokenizer=tok, name=out.name)
    st.session_state["job_id"] = job.id
    return job


def _progress_panel(job_id: str) -> None:
    job = resources.training_runner().get(job_id)
    if job is None:
        return
    every = 1.0 if job.running else None
    st.fragment(run_every=every)(_progress)(job_id)


def _progress(job_id: str) -> None:
    from ..plotting import plot_training_curves

    runner = resources.training_runner()
    job = runner.get(job_id)
    if job is None:
        return
    elapsed = (job.finished or time.time()) - job.started
    st.progress(job.progress(), text=f"**{job.name}** — {job.status}, step {job.step} of {job.total_steps or '?'} "
                                     f"({elapsed:.0f} s)")
    rows = job.snapshot_rows()
    if rows:
        st.plotly_chart(plot_training_curves(rows, height=300), key="live_curves", config={"displaylogo": False})
    if job.running:
        if st.button("Stop", key="train_stop", icon=":material/stop_circle:"):
            runner.stop(job_id)
            st.toast("Stopping after this step; the adapter and a checkpoint will be written.")
        return
    if job.status == "failed":
        st.error(f"The run failed: {job.error}")
        return
    label = f"trained/{job.out.name}"
    st.success(f"Saved the adapter to `{job.out}` ({job.status}). It is listed in the sidebar as **{label}**.")
    st.button("Analyse this prompt", key="train_analyse", on_click=select_prompt, args=(label, str(job.out)))
    if not st.session_state.get(f"_refreshed_{job_id}"):
        st.session_state[f"_refreshed_{job_id}"] = True
        st.rerun(scope="app")  # once, so the sidebar lists the new adapter
