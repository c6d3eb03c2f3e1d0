"""The trainer's side of ``torchrun``/``accelerate launch``: joining the process group, choosing this process's
device, and the only collectives the trainer calls itself (DDP does the gradients).

Every tensor handed to torch.distributed is put on the device the trainer chose first: NCCL takes only CUDA
tensors (a CPU tensor fails at the first step of a multi-GPU run), gloo takes CPU ones."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..exceptions import TrainingError


@dataclass
class Dist:
    """This process's place in the run: ``rank`` of ``world`` processes, ``local_rank`` on its machine,
    ``created`` when ``dist_setup`` started the process group (and ``close`` ends it), ``device`` the device the
    trainer chose for this process (set before the first collective)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    created: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, value) -> torch.Tensor:
        """``value`` (a tensor or a list of numbers) summed over the processes, as a float32 tensor on
        ``device``; with one process, ``value`` itself there."""
        t = torch.as_tensor(value, dtype=torch.float32, device=self.device).detach()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t

    def barrier(self) -> None:
        """Wait for every process; on NCCL the barrier runs on this process's GPU (else all on GPU 0)."""
        if self.world > 1:
            import torch.distributed as dist

            if self.device.type == "cuda" and self.device.index is not None:
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def close(self) -> None:
        if self.created:
            import torch.distributed as dist

            dist.destroy_process_group()


def dist_setup(device_pref: str) -> Dist:
    """Join the process group a launcher describes (``WORLD_SIZE > 1``): nccl when the run is on GPUs, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        created = True
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")), created=created)


def choose_device(pref: str, d: Dist) -> torch.device:
    """The device of this process for ``--device pref``: ``auto`` is this rank's GPU when there is one."""
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", d.local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    if pref == "cuda" and d.world > 1:
        return torch.device("cuda", d.local_rank)
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {pref!r} was asked for but CUDA is not available; use --device cpu.")
    return torch.device(pref)


def use_device(d: Dist, device: torch.device) -> torch.device:
    """Record ``device`` as this process's (before the first collective) and, on GPUs with several processes,
    make it the current CUDA device, which NCCL and DDP use."""
    d.device = device
    if device.type == "cuda" and d.world > 1:
        torch.cuda.set_device(device)
    return device
