"""Every section of the dashboard through ``streamlit.testing.v1.AppTest``: no exception, the expected widgets
and values.  Runs against the real SmolLM2 vocabulary (the UMAP layout is fitted once into the test cache)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app_helpers import ROOT

pytestmark = pytest.mark.integration

TIMEOUT = 600  # a cold test cache fits the UMAP layout (and CSLS neighbourhoods) inside a run


@pytest.fixture(scope="module")
def folders(smollm2_text_adapter, tmp_path_factory):
    """A prompt folder with: ``text-init`` (an untrained TEXT-init PEFT adapter), ``text-init-run`` (the same with
    training snapshots, log and meta, as ``analyzer.training`` writes them), ``words.npy`` (four token
    embeddings); a second folder holding a broken adapter; and an empty runs folder."""
    import torch
    from safetensors.torch import save_file

    from analyzer import load_prompt, load_vocabulary

    adapter, _ = smollm2_text_adapter
    root = tmp_path_factory.mktemp("app-prompts")
    shutil.copytree(adapter, root / "text-init")
    run = root / "text-init-run"
    shutil.copytree(adapter, run)
    v0 = torch.from_numpy(load_prompt(adapter).vectors)
    gen = torch.Generator().manual_seed(0)
    snaps = {f"step_{s:06d}": (v0 + 0.004 * s * torch.randn(v0.shape, generator=gen)).contiguous()
             for s in (0, 10, 20, 30)}
    save_file(snaps, str(run / "snapshots.safetensors"))
    rows = [{"step": 0, "eval_accuracy": 0.5}] + [{"step": s, "loss": 1.0 / s, "lr": 0.01} for s in range(1, 31)]
    rows[-1]["eval_accuracy"] = 0.7
    (run / "training_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "training_meta.json").write_text(json.dumps({
        "task": {"name": "sentiment"}, "init": {"mode": "text"}, "steps_done": 30,
        "final_eval": {"accuracy": 0.7}}))
    vocab = load_vocabulary("smollm2-135m")
    ids = [vocab.tokens.index(t) for t in ("␣good", "␣bad", "␣movie", "␣review")]
    np.save(root / "words.npy", np.asarray(vocab.embeddings)[ids] * 1.5)
    np.save(root / "wide.npy", np.random.default_rng(0).normal(size=(4, 640)).astype(np.float32))  # Gemma's width

    broken = tmp_path_factory.mktemp("app-broken")
    (broken / "bad-adapter").mkdir()
    (broken / "bad-adapter" / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (broken / "bad-adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    return {"prompts": root, "broken": broken, "runs": tmp_path_factory.mktemp("app-runs")}


@pytest.fixture(autouse=True, scope="module")
def _no_background_work_left():
    """Every test's background metrics finish before the module ends (nothing runs at interpreter exit)."""
    yield
    from concurrent.futures import wait

    from analyzer.ui import resources

    wait(list(resources._background()["futures"].values()), timeout=TIMEOUT)


@pytest.fixture()
def app(folders, monkeypatch):
    """A fresh AppTest (its own session) on the test prompt folder, ``text-init`` selected, as served on
    127.0.0.1 (what the launcher and .streamlit/config.toml set; typed paths are on)."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_PROMPTS", str(folders["prompts"]))
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_RUNS", str(folders["runs"]))
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_SELECT", "text-init")
    monkeypatch.delenv("SOFTPROMPT_ANALYZER_MODEL", raising=False)
    address = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")

    def make():
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)

    yield make
    config.set_option("server.address", address)


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def table_text(at) -> str:
    return "\n".join(t.value.to_string() for t in at.table)


def settle(at):
    """Wait for the background metrics, then rerun (what the page's poller does every second)."""
    from concurrent.futures import wait

    from analyzer.ui import resources

    wait(list(resources._background()["futures"].values()), timeout=TIMEOUT)
    at.run()
    return at


def go_to(at, section: str):
    at.sidebar.radio(key="section").set_value(section).run()
    ok(at)
    return at


# --------------------------------------------------------------------------------------------- explore
def frame_text(at) -> str:
    return "\n".join(d.value.to_string() for d in at.dataframe)


def test_explore_map_and_neighbour_table(app):
    at = app().run()
    ok(at)
    assert at.sidebar.radio(key="section").value == "Explore"
    assert at.multiselect(key="prompt").value == ["text-init"]
    assert set(at.multiselect(key="prompt").options) >= {"text-init", "text-init-run", "words.npy"}
    assert at.text_input(key="model").value == "smollm2-135m"
    assert at.slider(key="k").value == 5 and at.radio(key="metric").value == "cosine"
    umap = chart_specs(at)[0]
    names = [t["name"] for t in umap["data"]]
    # the whole vocabulary as a density layer that never takes the hover, with cluster labels
    assert names[0] == "vocabulary (49,135 tokens)" and umap["data"][0]["type"] == "heatmap"
    assert umap["data"][0]["hoverinfo"] == "skip"
    assert "text-init" in names and "text-init neighbours" in names
    labels = next(t for t in umap["data"] if t["name"] == "cluster labels")     # a text trace under the prompts
    assert len([t for t in labels["text"] if " · " in t]) >= 10
    assert names.index("cluster labels") < names.index("text-init")            # virtual tokens drawn above them
    assert umap["layout"]["legend"]["orientation"] == "h"                       # below the plot
    virtual = next(t for t in umap["data"] if t["name"] == "text-init")
    assert virtual["text"] == [f"v{i}" for i in range(12)] and "nearest (cosine)" in virtual["hovertext"][0]
    assert virtual["customdata"][3] == [0, 3]                                   # what a click sends back
    # the TEXT init "Classify the sentiment ...": each virtual token's nearest token is its init token
    text = frame_text(at)
    assert "␣sentiment  1.00" in text and "␣negative  1.00" in text
    assert [t.label for t in at.tabs] == ["Neighbours", "Tightness", "Relatedness", "Geometry", "Evaluate",
                                          "Faithfulness", "Importance", "Describe", "Decode"]
    assert at.button(key="faith_run").label == "Compute faithfulness"


def test_explore_isolate_search_background_and_3d(app):
    at = app().run()
    # isolation (what a click on v2 or its table row sets): its neighbours linked, the side list, a reset
    at.session_state["isolate"] = ("text-init", 2)
    at.run()
    ok(at)
    umap = chart_specs(at)[0]
    iso = next(t for t in umap["data"] if t["name"] == "text-init v2")
    assert iso["customdata"] == [[0, 2]]
    assert len(next(t for t in umap["data"] if t["name"] == "text-init v2 neighbours")["customdata"]) == 5
    assert any(m.value == "**text-init · v2**" for m in at.markdown)
    distances = next(d.value for d in at.dataframe if list(d.value.columns)[:4] == ["#", "token", "id", "cosine"])
    assert len(distances) == 5 and distances["cosine"].iloc[0] == pytest.approx(1.0, abs=1e-3)
    at.button(key="iso_reset").click().run()
    ok(at)
    assert at.session_state["isolate"] is None
    assert "text-init v2" not in [t["name"] for t in chart_specs(at)[0]["data"]]
    # search: a result list with ids, the chosen token starred, and the virtual tokens nearest to it
    at.text_input(key="find").input("movie").run()
    ok(at)
    search = next(t for t in chart_specs(at)[0]["data"] if t["name"] == "search")
    assert "␣movie" in search["text"]
    results = next(d.value for d in at.dataframe if "nearest virtual token" in d.value.columns)
    assert results["token"].iloc[0] == "␣movie" and results["id"].iloc[0] > 0
    assert any(m.value.startswith("**Virtual tokens nearest to** `␣movie`") for m in at.markdown)
    nearest = next(d.value for d in at.dataframe if list(d.value.columns) == ["virtual token", "cosine", "rank"])
    assert len(nearest) >= 1 and all(v.startswith("v") and v.endswith(" · text-init") for v in nearest["virtual token"])
    at.button_group(key="background").set_value("off").run()
    ok(at)
    assert not [t for t in chart_specs(at)[0]["data"] if t["name"].startswith("vocabulary")]
    at.button_group(key="background").set_value("density").run()
    at.button_group(key="view").set_value("3-D").run()
    ok(at)
    data = chart_specs(at)[0]["data"]
    assert {t["type"] for t in data} == {"scatter3d"}
    assert data[0]["name"] == "vocabulary (49,135 tokens)" and data[0]["hoverinfo"] == "skip"   # 3-D keeps it


def test_k_and_csls_toggle(app):
    at = app().run()
    at.slider(key="k").set_value(3).run()
    ok(at)
    assert list(at.dataframe[0].value.columns) == ["v", "norm ×median", "#1", "#2", "#3"]
    cosine = frame_text(at)
    at.radio(key="metric").set_value("csls").run()
    ok(at)
    assert frame_text(at) != cosine and "␣sentiment" in frame_text(at)
    assert any("nearest (csls)" in t["hovertext"][0] for t in chart_specs(at)[0]["data"] if t["name"] == "text-init")


def test_several_prompts_on_one_map(app):
    at = app().run()
    at.multiselect(key="prompt").set_value(["text-init", "words.npy"]).run()
    ok(at)
    names = [t["name"] for t in chart_specs(at)[0]["data"]]
    assert "text-init" in names and "words.npy" in names       # one name everywhere: the sidebar's label
    assert {"text-init", "words.npy"} <= {t.label for t in at.tabs}              # one neighbour tab per prompt
    assert "␣good  1.00" in frame_text(at)


def test_prompts_of_another_width_are_not_listed(app):
    """A prompt trained for a model of another width is not offered with this model (it could only fail); the
    sidebar says which prompts it leaves out and what to do."""
    at = app().run()
    ok(at)
    options = at.multiselect(key="prompt").options
    assert "words.npy" in options and "wide.npy" not in options
    note = " ".join(c.value for c in at.sidebar.caption)
    assert "Not listed: 1 prompt of another width than smollm2-135m's (wide.npy (640))" in note


def test_the_samples_of_other_models_are_listed_with_their_model():
    """The shipped samples hold SmolLM2, Gemma 3 and Qwen prompts: with SmolLM2 the first listed (the default
    selection) is a SmolLM2 prompt, and the others are set apart by width."""
    from analyzer.models import EMBEDDED_MODELS
    from analyzer.ui._sources import discover
    from analyzer.ui.sidebar import split_by_width

    found = discover(ROOT / "sample_prompts")
    listed, other = split_by_width(found, EMBEDDED_MODELS["smollm2-135m"].dim)
    assert "sentiment-labels" in listed and set(listed) | set(other) == set(found)
    for label, width in other.items():
        model = label.split("/")[0]
        assert width == EMBEDDED_MODELS[model].dim != 576, label       # grouped under their model's name
    gemma, _ = split_by_width(found, EMBEDDED_MODELS["gemma3-270m"].dim)
    assert gemma and all(label.startswith("gemma3-270m/") for label in gemma)


def test_tightness_and_geometry_tabs(app):
    at = settle(app().run())
    ok(at)
    titles = [s["layout"].get("title", {}).get("text") for s in chart_specs(at)]
    assert "Tightness (model space)" in titles and "Geometry and drift" in titles
    text = " ".join(m.value for m in at.markdown)
    assert "Init token still among the top-5 neighbours: **100%**" in text  # untrained TEXT init
    tests = next(df.value for df in at.table if list(df.value.columns) == ["measure", "value", "null", "q",
                                                                              "verdict"])
    assert "tightness (model space)" in set(tests["measure"]) and "matched 0." in " ".join(tests["null"])
    assert set(tests["verdict"]) <= {"higher than chance", "lower than chance", "not distinguishable", "reference",
                                     "higher than at init", "lower than at init", "not testable"}
    # each tab's glossary covers every measure it shows, its folded reference rows and charts included (Geometry
    # has no claim row at all, yet explains its nearest-token rows, the norms and the drift)
    glossary = [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**") and "**: " in m.value]
    assert {"nearest-token cosine", "nearest-token distance", "norm", "drift", "tightness"} <= set(glossary)
    at.button(key="tight_prompt_full").click().run()
    settle(at)
    ok(at)
    titles = [s["layout"].get("title", {}).get("text") for s in chart_specs(at)]
    assert "Tightness (text space, MiniLM)" in titles


def test_relatedness_tab(app):
    at = settle(app().run())
    ok(at)
    rel = next(s for s in chart_specs(at) if "Related to 'sentiment'" in s["layout"].get("title", {}).get("text", ""))
    assert len(next(t for t in rel["data"] if t["type"] == "bar")["x"]) == 12  # one bar per virtual token
    rel_rows = [df.value for df in at.table if list(df.value.columns) == ["measure", "value", "null", "q",
                                                                           "verdict"]][-1]
    assert set(rel_rows["measure"]) >= {"task-related share (model space)", "task specificity (model space)"}
    assert "␣positive" in table_text(at)  # the TEXT init contains the label words


def test_faithfulness_on_request(app):
    at = app().run()
    ok(at)
    assert not any(s["layout"].get("title", {}).get("text", "").startswith("Accuracy") for s in chart_specs(at))
    at.select_slider(key="faith_limit").set_value(50).run()
    at.button(key="faith_run").click().run()
    settle(at)
    ok(at)
    titles = [s["layout"].get("title", {}).get("text") for s in chart_specs(at)]
    assert "Accuracy by condition (95% CI)" in titles and "Logit lens" in titles
    text = " ".join(m.value for m in at.markdown)
    assert "**Hard projection:**" in text and "`␣sentiment`" in text


def test_geometry_tab_shows_norms(app):
    at = app().run()
    ok(at)
    norms = next(s for s in chart_specs(at) if s["layout"].get("title", {}).get("text") == "Virtual-token norms")
    assert norms["data"][0]["type"] == "bar" and len(norms["data"][0]["x"]) == 12
    assert norms["layout"]["yaxis"]["title"]["text"] == "norm ×median"     # the map's and the table's one unit


# --------------------------------------------------------------------------------------------- compare
def test_compare_side_by_side_per_task(app):
    at = app().run()
    at.multiselect(key="prompt").set_value(["text-init", "text-init-run", "words.npy"]).run()
    go_to(at, "Compare")
    tasks = at.button_group(key="compare_task")
    assert set(tasks.options) == {"sentiment", "(unknown task)"}
    tasks.set_value("sentiment").run()
    ok(at)
    swap = "One model, a prompt per task"          # the prompt swap's block, last
    assert [s.value for s in at.subheader] == ["text-init-run", swap]
    assert "val. acc. 70.0%" in " ".join(c.value for c in at.caption)
    # one prompt records its task: the swap says what to select and names the ones it leaves out
    assert any("at least two prompts" in i.value for i in at.info)
    assert "Left out (no record of the task they were trained for): text-init, words.npy." in \
        [c.value for c in at.caption]
    tasks.set_value("(unknown task)").run()
    ok(at)
    assert [s.value for s in at.subheader] == ["text-init", "words.npy", swap]    # the sidebar's names
    # prompt-to-prompt similarity of all three: three heat maps (mean-vector cosine, token-pair cosine, token-wise
    # max inner product), 1 on the diagonal of the mean-vector cosine
    sim = next(c for c in chart_specs(at) if c["layout"].get("title", {}).get("text", "").startswith("How similar"))
    heat = [t for t in sim["data"] if t["type"] == "heatmap"]
    assert len(heat) == 3 and heat[0]["y"] == ["text-init", "text-init-run", "words.npy"]
    assert "max inner product" in heat[2]["hovertemplate"]
    assert [round(heat[0]["z"][i][i], 6) for i in range(3)] == [1.0, 1.0, 1.0]
    assert heat[0]["z"][0][1] == pytest.approx(1.0, abs=1e-5)     # the run is the same adapter plus a log


# --------------------------------------------------------------------------------------------- trajectory
def test_trajectory_animation_and_curves(app):
    at = app().run()
    go_to(at, "Trajectory")
    assert "snapshots" in at.info[0].value  # text-init has none
    at.multiselect(key="prompt").set_value(["text-init-run"]).run()
    ok(at)
    specs = chart_specs(at)
    traj = specs[0]
    assert [f["name"] for f in traj["frames"]] == ["0", "10", "20", "30"]
    assert traj["data"][0]["type"] == "heatmap" and "cluster labels" in [t.get("name") for t in traj["data"]]
    # one step slider (Streamlit's) picks the snapshot the map shows and marks it on the metric plots
    step = at.select_slider(key="traj_step_text-init-run")
    assert step.value == 30
    step.set_value(10).run()
    ok(at)
    specs = chart_specs(at)
    traj = specs[0]
    assert "step 10" in traj["layout"]["annotations"][0]["text"]
    assert [s["x0"] for s in specs[1]["layout"]["shapes"]] == [10] and \
        {s["x0"] for s in specs[2]["layout"]["shapes"]} == {10}
    curves = specs[1]
    assert [t["name"] for t in curves["data"]][:3] == ["loss", "loss (running mean)", "validation accuracy"]
    # the training-dynamics reading (issue 12): init tokens read off step 0 (TEXT init), relatedness to the run's task
    assert "Training dynamics" in [s.value for s in at.subheader]
    dyn = specs[2]
    names = [t.get("name") for t in dyn["data"]]
    assert {"init token rank", "tightness", "init token in top-5", "related to sentiment (share of neighbours)"} <= \
        set(names)
    assert dyn["data"][names.index("init token rank")]["x"] == [0, 10, 20, 30]


# --------------------------------------------------------------------------------------------- train
def test_train_in_background_then_select(app, folders):
    from analyzer.ui import resources

    at = app().run()
    go_to(at, "Train")
    assert at.selectbox(key="train_task").value == "sentiment"
    assert at.selectbox(key="train_init").options == ["text", "labels", "vocab", "random"]
    at.number_input(key="train_tokens").set_value(3)
    at.number_input(key="train_steps").set_value(5)
    at.number_input(key="train_batch").set_value(2)
    at.text_input(key="train_name").input("tiny run")
    start = next(b for b in at.button if b.label == "Start training")
    start.click().run()
    ok(at)
    runner = resources.training_runner()
    job = runner.get(at.session_state["job_id"])
    assert job is not None and job.out == folders["runs"] / "tiny_run"
    at.run()  # a rerun finds the job again and starts nothing
    assert len([j for j in runner.jobs() if j.out == job.out]) == 1
    runner.wait(job.id, 600)
    assert job.status == "done", job.error
    at.run()
    ok(at)
    assert any("trained/tiny_run" in s.value for s in at.success)
    assert "trained/tiny_run" in at.multiselect(key="prompt").options
    at.button(key="train_analyse").click().run()
    ok(at)
    # the new prompt is the selection and the page is Explore, drawing it (issue 11, point 1)
    assert at.multiselect(key="prompt").value == ["trained/tiny_run"]
    assert at.radio(key="section").value == "Explore"
    assert at.title[0].value == "Explore"
    assert any("tiny_run" in (t.get("name") or "") for spec in chart_specs(at) for t in spec["data"])
    # another tab (or a reload): the finished run is listed from disk, with its own Analyse button
    other = app().run()
    go_to(other, "Train")
    listed = [b for b in other.button if b.label == "Analyse"]
    assert listed, [b.label for b in other.button]
    listed[0].click().run()
    ok(other)
    assert other.multiselect(key="prompt").value == ["trained/tiny_run"]
    assert other.radio(key="section").value == "Explore"
    go_to(at, "Trajectory")
    at.selectbox(key="traj_run").set_value("trained/tiny_run").run()
    ok(at)
    assert len(chart_specs(at)[0]["frames"]) >= 2


def test_an_interrupted_run_is_marked_and_resumes(app, folders):
    """A run that dies mid-way (here a callback raising at step 4; a SIGKILL of the server leaves the same
    files) is listed as interrupted at its checkpoint's step; Resume continues it to the asked steps."""
    from analyzer.training import TrainConfig, train
    from analyzer.ui import resources
    from analyzer.ui._runner import run_state

    class Killed:
        def on_step(self, step, loss, lr):
            if step == 4:
                raise RuntimeError("the server was killed")

    out = folders["runs"] / "killed-run"
    cfg = TrainConfig(model="smollm2-135m", task="sentiment", out=str(out), num_virtual_tokens=3, steps=6,
                      batch_size=2, eval_every=0, eval_examples=20, checkpoint_every=3, snapshot_every=3)
    model, tok = resources.frozen_model("smollm2-135m")
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, callbacks=[Killed()], model=model, tokenizer=tok)
    state = run_state(out)
    assert state is not None and state.interrupted and (state.step, state.steps) == (3, 6)
    at = app().run()
    go_to(at, "Train")
    line = next(m.value for m in at.markdown if "trained/killed-run" in m.value)
    assert "interrupted" in line and "step 3 of 6" in line, line
    next(b for b in at.button if b.label == "Resume").click().run()
    ok(at)
    runner = resources.training_runner()
    job = runner.wait(at.session_state["job_id"], 600)
    assert job.status == "done", job.error
    assert run_state(out).step == 6 and not run_state(out).interrupted
    assert json.loads((out / "training_meta.json").read_text())["steps_done"] == 6   # as an uninterrupted run
    at.run()
    assert not any("interrupted" in m.value for m in at.markdown if "killed-run" in m.value)


# --------------------------------------------------------------------------------------------- export
def test_export_downloads(app):
    at = app().run()
    go_to(at, "Export")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["HTML", "JSON", "Markdown", "text-init (zip)"]
    md = at.expander[0].markdown[0].value
    assert "text-init" in md and "␣sentiment" in md
    at.sidebar.selectbox(key="task").set_value("spam").run()          # the sidebar's task reaches the report
    assert ", task spam" in at.expander[0].markdown[0].value
    at.radio(key="export_mode").set_value("full").run()
    ok(at)
    assert [b.label for b in at.get("download_button")] == ["text-init (zip)"]  # nothing built yet
    at.button(key="export_build").click().run()
    settle(at)
    ok(at)
    assert [b.label for b in at.get("download_button")][:3] == ["HTML", "JSON", "Markdown"]
    md = at.expander[0].markdown[0].value
    assert "tightness" in md.lower() and "random" in md.lower()
    # the map as a table for Embedding Atlas, built on request, with the command that opens it
    at.toggle(key="export_atlas").set_value(True).run()
    settle(at)
    ok(at)
    assert any(b.label.startswith("Embedding Atlas table (.parquet") for b in at.get("download_button"))
    assert any("embedding-atlas" in c.value and ".parquet --x x --y y" in c.value for c in at.code)


# --------------------------------------------------------------------------------------------- errors
def test_errors_are_one_line_boxes(app, folders):
    at = app().run()
    at.text_input(key="model").input("no-such-model").run()
    assert not at.exception
    assert at.error and "not found" in at.error[0].value and "Traceback" not in at.error[0].value
    at = app().run()
    at.text_input(key="prompt_folder").input(str(folders["broken"])).run()
    assert not at.exception
    at.multiselect(key="prompt").set_value(["bad-adapter"]).run()
    assert not at.exception
    assert any("LORA" in e.value for e in at.error), [e.value for e in at.error]


def test_add_prompt_by_path(app, folders):
    at = app().run()
    at.text_input(key="add_path").input(str(folders["prompts"] / "words.npy"))
    at.button(key="add_path_btn").click().run()
    ok(at)
    assert "path/words.npy" in at.multiselect(key="prompt").value


def test_model_line_says_when_the_vocabulary_stands_in(app, folders, tmp_path):
    """The caption under the title names the vocabulary read; an adapter trained on the family's base checkpoint
    read against the embedded Instruct copy is called a stand-in, the one trained on the embedded copy is not."""
    from analyzer import load_prompts
    from analyzer.provenance import model_provenance

    at = app().run()
    ok(at)
    own = model_provenance("smollm2-135m", load_prompts(folders["prompts"] / "text-init"))
    assert not own["stand_in"] and own["sentence"] in [c.value for c in at.caption]
    base = tmp_path / "on-base"
    shutil.copytree(folders["prompts"] / "text-init", base)
    cfg = json.loads((base / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M"
    (base / "adapter_config.json").write_text(json.dumps(cfg))
    at.text_input(key="add_path").input(str(base))
    at.button(key="add_path_btn").click().run()
    at.multiselect(key="prompt").set_value(["path/on-base"]).run()
    ok(at)
    lines = [c.value for c in at.caption if c.value.startswith("vocabulary: ")]
    assert len(lines) == 1 and lines[0].endswith("a stand-in for HuggingFaceTB/SmolLM2-135M named by the adapter: "
                                                 "another checkpoint of the same family, quantised"), lines


def test_add_prompt_by_path_refuses_a_width_that_does_not_fit(app, tmp_path):
    import numpy as np

    np.save(tmp_path / "narrow.npy", np.ones((4, 100), np.float32))
    at = app().run()
    at.text_input(key="add_path").input(str(tmp_path / "narrow.npy"))
    at.button(key="add_path_btn").click().run()
    assert not at.exception
    assert any("width 100" in e.value and "576" in e.value for e in at.error), [e.value for e in at.error]
    assert "path/narrow.npy" not in at.multiselect(key="prompt").options


def test_add_prompt_by_path_refuses_a_degenerate_prompt_naming_its_rows(app, tmp_path):
    """The loaders' row rule reaches the dashboard: an all-zero row is named in an error box, not scored."""
    import numpy as np

    v = np.random.default_rng(0).normal(size=(4, 576)).astype(np.float32)
    v[1] = 0.0
    np.save(tmp_path / "zero-row.npy", v)
    at = app().run()
    at.text_input(key="add_path").input(str(tmp_path / "zero-row.npy"))
    at.button(key="add_path_btn").click().run()
    assert not at.exception
    assert any("row 1 (of 4) is all zeros" in e.value for e in at.error), [e.value for e in at.error]
    assert "path/zero-row.npy" not in at.multiselect(key="prompt").options


# --------------------------------------------------------------------------------------------- bound off loopback
@pytest.fixture()
def bound_to(monkeypatch):
    """Set Streamlit's ``server.address`` (what ``--server.address`` and ``softprompt-analyzer app --address`` set)
    for one test; no --allow-paths unless the test gives it."""
    from streamlit import config

    before = config.get_option("server.address")
    monkeypatch.delenv("SOFTPROMPT_ANALYZER_ALLOW_PATHS", raising=False)
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", before)


@pytest.fixture()
def path_task_folder(folders, tmp_path, monkeypatch):
    """The prompt folder holding one adapter whose training record names a task *file* (e.g. from an upload)."""
    shutil.copytree(folders["prompts"] / "text-init", tmp_path / "text-init")
    csv = tmp_path / "secret.csv"
    csv.write_text("text,label\nhello,a\nworld,b\n")
    (tmp_path / "text-init" / "training_meta.json").write_text(json.dumps({"task": {"name": str(csv)}}))
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_PROMPTS", str(tmp_path))
    return tmp_path, str(csv)


def _trajectory(app):
    """The app on its lightest section (the sidebar is the same on every section)."""
    at = app()
    at.query_params["section"] = "Trajectory"
    return at


def _why(at) -> list[str]:
    return [i.value for i in at.sidebar.info if "--allow-paths" in i.value]


@pytest.mark.parametrize("address, shown", [("0.0.0.0", "0.0.0.0"), ("192.168.1.20", "192.168.1.20"),
                                            (None, "every interface (server.address is unset)")])
def test_off_loopback_typed_paths_are_off(app, folders, bound_to, path_task_folder, address, shown):
    bound_to(address)
    folder, task_file = path_task_folder
    at = _trajectory(app)
    # values slipped in through the session (a crafted client) are ignored as well
    at.session_state["prompt_folder"] = str(folders["broken"])
    at.session_state["add_path"] = "/etc"
    at.session_state["model"] = "/etc"
    at.session_state["task"] = task_file
    at.run()
    ok(at)
    assert _why(at) == [f"The server listens on {shown}, so typed paths and model names are off; restart with "
                        "--allow-paths to allow them."]
    assert at.text_input(key="prompt_folder").disabled and at.text_input(key="prompt_folder").value == str(folder)
    options = at.multiselect(key="prompt").options      # the server's folder (and its runs), not the one slipped in
    assert "text-init" in options and "bad-adapter" not in options
    assert at.text_input(key="add_path").disabled and at.text_input(key="add_path").value == ""
    assert at.button(key="add_path_btn").disabled
    assert "model" not in [t.key for t in at.text_input]
    from analyzer.models import EMBEDDED_MODELS

    assert at.selectbox(key="model").options == list(EMBEDDED_MODELS)  # the embedded models, the default first
    assert at.selectbox(key="model").value == "smollm2-135m"
    task = at.selectbox(key="task")
    assert task.options == ["sentiment", "question-type", "spam"] and task.value == "sentiment"
    assert not task.proto.accept_new_options  # no typed task file, and not the one the adapter's record names
    assert at.get("file_uploader")  # uploads stay
    at.selectbox(key="model").set_value("gemma3-270m").run()
    assert not at.exception and at.selectbox(key="model").value == "gemma3-270m"


@pytest.mark.parametrize("how", ["cli", "script-args"])
def test_off_loopback_with_allow_paths_keeps_typed_paths(app, folders, bound_to, path_task_folder, monkeypatch,
                                                         how):
    import sys

    bound_to("0.0.0.0")
    _, task_file = path_task_folder
    if how == "cli":  # softprompt-analyzer app --address 0.0.0.0 --allow-paths
        monkeypatch.setenv("SOFTPROMPT_ANALYZER_ALLOW_PATHS", "1")
    else:  # streamlit run app.py --server.address 0.0.0.0 -- --allow-paths
        monkeypatch.setattr(sys, "argv", [str(ROOT / "app.py"), "--allow-paths"])
    at = _trajectory(app).run()
    ok(at)
    assert _why(at) == []
    for key in ("model", "prompt_folder", "add_path"):
        assert not at.text_input(key=key).disabled
    assert task_file in at.selectbox(key="task").options and at.selectbox(key="task").proto.accept_new_options
    at.text_input(key="prompt_folder").input(str(folders["broken"])).run()
    assert not at.exception and "bad-adapter" in at.multiselect(key="prompt").options


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_on_loopback_typed_paths_are_on(app, folders, bound_to, address):
    bound_to(address)
    at = _trajectory(app).run()
    ok(at)
    assert _why(at) == []
    for key in ("model", "prompt_folder", "add_path"):
        assert not at.text_input(key=key).disabled
    assert not at.button(key="add_path_btn").disabled and at.selectbox(key="task").proto.accept_new_options
    at.text_input(key="add_path").input(str(folders["prompts"] / "words.npy"))
    at.button(key="add_path_btn").click().run()
    ok(at)
    assert "path/words.npy" in at.multiselect(key="prompt").value
