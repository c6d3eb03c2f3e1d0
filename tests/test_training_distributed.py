"""The trainer's collectives: every tensor it hands to torch.distributed lives on the device the trainer chose
(NCCL takes only CUDA tensors; a CPU tensor fails at the first step of a multi-GPU run).

Without a GPU a ``meta`` device stands in for one in the unit test, and a one-process gloo group runs the
distributed code path of a tiny training in this process (an NCCL group on one GPU where there is one).  Two
ranks on two GPUs (torchrun with NCCL) are not exercised by the suite."""

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from test_training import config, make_task_csv  # noqa: E402

COLLECTIVES = ("all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce", "reduce_scatter",
               "reduce_scatter_tensor", "gather", "scatter", "all_to_all", "all_to_all_single", "barrier")


def _tensors(args, kwargs):
    out = []
    for a in list(args) + list(kwargs.values()):
        if torch.is_tensor(a):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out += [t for t in a if torch.is_tensor(t)]
    return out


@pytest.fixture
def recorded(monkeypatch):
    """Every call to a torch.distributed collective, passed through to the real one, as (name, [device of each
    tensor], [a copy of each tensor before the call])."""
    calls = []
    for name in COLLECTIVES:
        real = getattr(dist, name, None)
        if real is None:
            continue

        def spy(*args, _name=name, _real=real, **kwargs):
            ts = _tensors(args, kwargs)
            calls.append((_name, [t.device for t in ts], [t.detach().clone() for t in ts]))
            return _real(*args, **kwargs)

        monkeypatch.setattr(dist, name, spy)
    return calls


def test_collective_tensors_go_to_the_chosen_device(monkeypatch):
    """The trainer's own collectives, with ``meta`` standing in for a GPU: a loss computed elsewhere and a plain
    Python stop flag both reach all_reduce on that device, and a CUDA barrier names its GPU."""
    from analyzer.training._dist import Dist

    seen = []
    monkeypatch.setattr(dist, "all_reduce", lambda t, *a, **k: seen.append(("all_reduce", t.device, t.dtype)))
    monkeypatch.setattr(dist, "barrier", lambda *a, **k: seen.append(("barrier", k.get("device_ids"))))
    meta = torch.device("meta")
    d = Dist(rank=0, world=2, device=meta)
    loss = d.sum(torch.tensor(0.25))          # a CPU tensor in
    flag = d.sum([1.0])                       # numbers in (the stop flag)
    assert loss.device == meta and flag.device == meta and flag.shape == (1,)
    d.barrier()
    assert seen == [("all_reduce", meta, torch.float32), ("all_reduce", meta, torch.float32), ("barrier", None)]

    seen.clear()
    Dist(rank=1, world=2, local_rank=1, device=torch.device("cuda", 1)).barrier()
    assert seen == [("barrier", [1])]          # NCCL: the barrier runs on this process's GPU, not on GPU 0

    seen.clear()                               # one process: no collective at all, the value comes back as is
    single = Dist(device=meta)
    assert single.sum([3.0]).device == meta and single.barrier() is None and seen == []


@pytest.mark.parametrize("backend, device_pref", [
    ("gloo", "cpu"),
    pytest.param("nccl", "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")),
])
def test_a_distributed_run_hands_torch_distributed_only_tensors_on_its_device(backend, device_pref, recorded,
                                                                               tiny_llama_dir, tmp_path, monkeypatch):
    """A tiny training through the distributed code path (DDP, loss and stop-flag all_reduce, barriers) in a
    one-process group that the trainer treats as a world of 2: every collective's tensor is on the device the
    trainer chose, the logged loss is the mean over the ranks, and a stop on rank 0 reaches every rank.  With a
    GPU the group is NCCL's, which refuses any CPU tensor."""
    from analyzer.models import load_frozen_model
    from analyzer.training import Callback, StopFlag, read_training_log, train
    from analyzer.training import trainer as trainer_mod

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tok = load_frozen_model(str(tiny_llama_dir))
    task = make_task_csv(tmp_path / "task.csv")
    chosen = []
    real_device = trainer_mod.choose_device

    def device(pref, d):
        chosen.append(real_device(pref, d))
        return chosen[-1]

    monkeypatch.setattr(trainer_mod, "choose_device", device)
    monkeypatch.setattr(trainer_mod, "dist_setup", lambda pref: trainer_mod.Dist(rank=0, world=2))
    flag = StopFlag()

    class StopAt(Callback):
        def on_step(self, step, loss, lr):
            if step == 3:
                flag.stop()

    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        res = train(config(tiny_llama_dir, str(task), tmp_path / "run", steps=6, eval_every=0, eval_examples=8,
                           device=device_pref), callbacks=[flag, StopAt()], model=model, tokenizer=tok)
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)
    assert res.stopped and res.steps == 3
    assert len(chosen) == 1 and chosen[0].type == device_pref
    names = [name for name, _, _ in recorded]
    assert names.count("all_reduce") == 2 * 3            # per step: the loss and the stop flag
    assert names.count("barrier") == 2                   # after preparing --out, before returning
    for name, devices, _ in recorded:
        assert devices == [chosen[0]] * len(devices), (name, devices)
    # the logged loss is the all-reduced sum over the ranks (here one real rank) divided by the world size (2)
    reduced = [float(values[0]) for name, _, values in recorded if name == "all_reduce"][0::2]
    losses = [r["loss"] for r in read_training_log(tmp_path / "run") if "loss" in r]
    assert losses == pytest.approx([x / 2 for x in reduced])
