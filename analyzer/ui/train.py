"""Train: prompt tuning on the frozen model in a background thread, with a live loss/accuracy chart and a stop
button.  A rerun of the page (or another tab) finds the running job again; it never starts a second one.
The result is a PEFT adapter in the runs folder, selectable at once as ``trained/<name>``."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from . import _sources, resources
from ._common import Selection, guard
from ._uploads import sanitize_name
from .sidebar import select_prompt


def train(sel: Selection) -> None:
    from ..training import INIT_MODES
    from ..training.config import TRAIN_LR

    runner = resources.training_runner()
    job = runner.get(st.session_state.get("job_id")) or runner.active()
    if job is not None:  # a tab that only watched (or whose Start was refused) keeps following this run
        st.session_state["job_id"] = job.id
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
        steps = c4.number_input("Steps", 1, 5000, 100, step=5, key="train_steps")
        lr = c5.number_input("Learning rate", 1e-4, 1.0, TRAIN_LR, format="%.4f", key="train_lr",
                             help=f"AdamW peak learning rate; {TRAIN_LR:g} (Lester et al.) is what every sample prompt "
                                  f"was trained at. At 0.03 a 20-token prompt barely leaves its init tokens in 300 "
                                  f"steps.")
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
    _earlier_runs(runner, job)


def _earlier_runs(runner, job) -> None:
    """The runs on disk (the runs folder, so they survive a reload or a restart), each with its own
    "Analyse" button; the status of a run this server knows, else what its files say."""
    on_disk = _sources.discover(_sources.runs_dir(), prefix="trained/")
    known = {str(j.out): j for j in runner.jobs()}
    rows = [(label, path) for label, path in on_disk.items() if job is None or path != str(job.out)]
    if not rows:
        return
    busy = runner.active() is not None
    with st.expander(f"Earlier runs ({len(rows)})", expanded=job is None):
        for i, (label, path) in enumerate(rows):
            j = known.get(path)
            info = _sources.run_info(path)
            status, state = run_status(path, j, info)
            acc = f" · validation accuracy {info.accuracy:.0%}" if info.accuracy is not None else ""
            c1, c2, c3 = st.columns([5, 1, 1], vertical_alignment="center")
            c1.markdown(f"**{label}** — {status}{acc} · `{path}`")
            c2.button("Analyse", key=f"train_analyse_{i}", on_click=analyse_prompt, args=(label, path),
                      disabled=j is not None and j.running, width="stretch")
            if state is not None and state.interrupted and (j is None or not j.running):
                if c3.button("Resume", key=f"train_resume_{i}", disabled=busy, width="stretch",
                             help=f"Continue from the checkpoint at step {state.step} to step {state.steps}."):
                    with guard("resuming the run"):
                        _resume(runner, path, state)
                        st.rerun()



def run_status(path: str, job, info) -> tuple[str, object]:
    """The status words of one earlier run (Streamlit colour markup) and its ``RunState`` (None when it has no
    checkpoint or this server is running it): this server's job, else a run another process holds (before its
    first checkpoint too), diverged, interrupted, or finished."""
    from ..training.runlock import run_holder
    from ._runner import run_state

    state = run_state(path) if job is None or not job.running else None
    holder = run_holder(path) if job is None else None
    if job is not None:
        return f"{job.status}, step {job.step} of {job.total_steps}", state
    if holder is not None:
        where = f", step {state.step} of {state.steps}" if state is not None else ", no checkpoint yet"
        return f":blue[in training by another process] ({holder}){where}", state
    if state is not None and state.diverged is not None:
        d = state.diverged
        return (f":red[diverged] at step {d.get('step')} (lr {d.get('lr')}: {d.get('reason')}); the adapter holds "
                f"step {state.step}; resume it from the CLI with a lower --lr"), state
    if state is not None and state.interrupted:
        return f":orange[interrupted] at step {state.step} of {state.steps}", state
    return (f"{info.steps} steps" if info.steps is not None else ""), state


def analyse_prompt(label: str, path: str) -> None:
    """A button callback: select the prompt ``label`` (only it) and switch to Explore.  Runs before the page
    is drawn, so the sidebar's widgets take the new values."""
    select_prompt(label, path, only=True)
    st.session_state["section"] = "Explore"


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


def _resume(runner, path: str, state) -> None:
    """Continue the interrupted run in ``path`` from its checkpoint (the trainer's ``resume``)."""
    from ..training import TrainConfig

    config = TrainConfig.from_dict(state.config, out=str(path), resume=True, overwrite=False)
    with st.spinner("Loading the frozen model (shared by every session; first time ~30 s)…"):
        model, tok = resources.frozen_model(config.model)
    job = runner.start(config, model=model, tokenizer=tok, name=Path(path).name)
    st.session_state["job_id"] = job.id


def _progress_panel(job_id: str) -> None:
    job = resources.training_runner().get(job_id)
    if job is None:
        return
    if job.running:  # live, every second; the whole page reruns once the run ends (the sidebar lists it then)
        st.fragment(run_every=1.0)(_live)(job_id)
        return
    _progress(job)
    if job.status == "failed":
        st.error(f"The run failed: {job.error}")
        return
    label = f"trained/{job.out.name}"
    st.success(f"Saved the adapter to `{job.out}` ({job.status}). It is listed in the sidebar as **{label}**.")
    # outside any fragment: a click reruns the whole page, so the selection and the section change at once
    st.button("Analyse this prompt", key="train_analyse", type="primary", icon=":material/query_stats:",
              on_click=analyse_prompt, args=(label, str(job.out)))


def _live(job_id: str) -> None:
    runner = resources.training_runner()
    job = runner.get(job_id)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    _progress(job)
    if st.button("Stop", key="train_stop", icon=":material/stop_circle:"):
        runner.stop(job_id)
        st.toast("Stopping after this step; the adapter and a checkpoint will be written.")


def _progress(job) -> None:
    from ..plotting import plot_training_curves

    elapsed = (job.finished or time.time()) - job.started
    st.progress(job.progress(), text=f"**{job.name}** — {job.status}, step {job.step} of {job.total_steps or '?'} "
                                     f"({elapsed:.0f} s)")
    rows = job.snapshot_rows()
    if rows:
        st.plotly_chart(plot_training_curves(rows, height=300), key="live_curves", config={"displaylogo": False})
