"""The training-dynamics reading: leave steps of init tokens, tightness and relatedness per snapshot, on a path
built by hand (known answers), on a run of our trainer (init from the adapter) and in its figure."""

import numpy as np
import pytest

from analyzer import AnalyzerError, NeighborIndex
from test_metrics import clustered_vocab


@pytest.fixture(scope="module")
def world():
    v, centres, cluster = clustered_vocab()
    return v, NeighborIndex(k=5).fit(v)


def _path(v):
    """Three positions starting on tokens 3, 20 and 40 (exact rows, as TEXT/SAMPLE_VOCAB init gives): position 0
    moves onto a diffuse token at step 10 and comes back at step 30; position 1 leaves at step 20 for good;
    position 2 never moves."""
    e = np.asarray(v.embeddings, np.float32)
    far = e[300]
    s0 = e[[3, 20, 40]].copy()
    s10 = s0.copy()
    s10[0] = far
    s20 = s10.copy()
    s20[1] = e[301]
    s30 = s20.copy()
    s30[0] = e[3]
    return {0: s0, 10: s10, 20: s20, 30: s30}


def test_leave_steps_and_returns_on_a_known_path(world):
    from analyzer.dynamics import training_dynamics

    v, index = world
    dyn = training_dynamics(_path(v), index, k=3, task=False)
    assert dyn.steps == (0, 10, 20, 30) and dyn.init_source == "step 0"
    assert dyn.init_token_ids == (3, 20, 40)                       # read off the step-0 rows
    assert dyn.leave_step == (10, 20, None) and dyn.returned == (True, False, False)
    assert dyn.init_rank[0].tolist() == [1, 1, 1]                  # at step 0 every init token is the nearest
    assert dyn.in_top_k[:, 0].tolist() == [True, False, False, True]
    assert dyn.share_in_top_k().tolist() == pytest.approx([1.0, 2 / 3, 1 / 3, 2 / 3])
    assert dyn.tightness.shape == (4, 3) and np.isfinite(dyn.tightness).all()
    # a clustered init token (cos ~0.98 within its cluster) has tighter neighbours than a diffuse one
    assert dyn.tightness[0, 0] > dyn.tightness[1, 0]
    assert dyn.relatedness is None and dyn.drift[0] == 0 and dyn.drift[1] > 0
    s = dyn.summary()
    assert s["positions_left"] == 2 and s["positions_returned"] == 1 and s["median_leave_step"] == 15.0


def test_random_init_has_no_init_tokens_and_given_ids_win(world):
    from analyzer.dynamics import training_dynamics

    v, index = world
    rng = np.random.default_rng(0)
    snaps = {0: rng.normal(size=(3, v.dim)).astype(np.float32), 5: rng.normal(size=(3, v.dim)).astype(np.float32)}
    dyn = training_dynamics(snaps, index, k=3, task=False)
    assert dyn.init_token_ids == (None, None, None) and dyn.init_source is None
    assert dyn.leave_step == (None, None, None) and np.isnan(dyn.share_in_top_k()).all()
    given = training_dynamics(_path(v), index, k=3, task=False, init_token_ids=[3, None, 41])
    assert given.init_source == "given" and given.leave_step[1] is None


def test_bad_input_is_one_clear_line(world):
    from analyzer.dynamics import training_dynamics

    v, index = world
    with pytest.raises(AnalyzerError, match=r"shape \(3, 7\).*has dim 32"):
        training_dynamics({0: np.zeros((3, 7))}, index)
    with pytest.raises(AnalyzerError, match="'k' parameter of training_dynamics"):
        training_dynamics(_path(v), index, k=0)
    with pytest.raises(AnalyzerError, match="fitted NeighborIndex"):
        training_dynamics(_path(v), NeighborIndex())
    with pytest.raises(AnalyzerError, match="init_token_ids has 2 entries for 3"):
        training_dynamics(_path(v), index, init_token_ids=[1, 2])


@pytest.mark.usefixtures("one_torch_thread")
def test_a_trainer_run_and_its_figure(tiny_llama_dir, tmp_path):
    from analyzer.dynamics import training_dynamics
    from analyzer.loaders import load_vocabulary
    from analyzer.plotting import plot_training_dynamics
    from analyzer.training import train
    from test_training import config, make_task_csv

    csv = str(make_task_csv(tmp_path / "t.csv"))
    out = tmp_path / "run"
    train(config(tiny_llama_dir, csv, out, steps=12, lr=0.5, snapshot_every=3))
    vocab = load_vocabulary(str(tiny_llama_dir))
    index = NeighborIndex(k=5).fit(vocab)
    dyn = training_dynamics(out, index, k=3)
    assert dyn.steps == (0, 3, 6, 9, 12) and dyn.init_source == "adapter"   # labels init: recorded ids
    assert all(t is not None for t in dyn.init_token_ids)
    assert dyn.task == "t"          # the run's CSV task, found again by content (training_meta.json's record)
    assert training_dynamics(out, index, k=3, task=False).task is None
    assert dyn.drift[-1] > 0
    fig = plot_training_dynamics(dyn, height=500, title="tiny")
    names = [t.name for t in fig.data]
    assert "init token rank" in names and "tightness" in names and "init token in top-3" in names
    assert fig.layout.height == 500 and fig.layout.title.text == "tiny"
    assert list(fig.data[names.index("init token rank")].x) == [0, 3, 6, 9, 12]
