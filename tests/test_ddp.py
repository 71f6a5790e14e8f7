"""Alignment under DDP: two CPU processes (gloo) give the single-process loss and gradients; a DDP ``fit``.

The ranks hold halves of one global batch (of different sizes, with masks that keep different numbers of
steps on each rank). Every rank's loss must equal the single-process loss of the whole batch, and the
gradients DDP applies (each rank's gradients averaged over ranks) must equal the single-process ones.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from wmlm.model.align import AnchorAlignment

WORLD = 2
PAST, BEAM_DIM, GPS_DIM, EMBED = 3, 6, 2, 8
LOCAL_WINDOWS = (5, 3)  # windows on rank 0 and rank 1: a smaller last batch on one rank must work too
CONF = Path(__file__).parent / "conf"


class ToyAligner(nn.Module):
    """Linear encoders of two modalities and the alignment loss: ``[B, P, in] -> loss``."""

    def __init__(self, gather_with_grad: bool) -> None:
        super().__init__()
        torch.manual_seed(0)  # the same initial weights in every process
        self.beam = nn.Linear(BEAM_DIM, EMBED)
        self.gps = nn.Linear(GPS_DIM, EMBED)
        self.alignment = AnchorAlignment([("beam", "gps")], gather_with_grad=gather_with_grad)

    def forward(self, beam: Tensor, gps: Tensor, masks: dict[str, Tensor]) -> Tensor:
        return self.alignment({"beam": self.beam(beam), "gps": self.gps(gps)}, masks)["loss"]


def global_batch() -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """``beam [B, P, 6]``, ``gps [B, P, 2]`` and masks ``[B, P]`` of all ranks' windows, rank 0's first."""
    generator = torch.Generator().manual_seed(1)
    windows = sum(LOCAL_WINDOWS)
    beam = torch.randn(windows, PAST, BEAM_DIM, generator=generator)
    gps = torch.randn(windows, PAST, GPS_DIM, generator=generator)
    masks = {
        "beam": torch.ones(windows, PAST, dtype=torch.bool),
        "gps": torch.ones(windows, PAST, dtype=torch.bool),
    }
    masks["gps"][1, :2] = False  # rank 0 loses two steps, rank 1 one: kept counts differ between ranks
    masks["beam"][6, 0] = False
    return beam, gps, masks


def local_slice(rank: int) -> slice:
    start = sum(LOCAL_WINDOWS[:rank])
    return slice(start, start + LOCAL_WINDOWS[rank])


def single_process(gather_with_grad: bool) -> dict[str, Tensor]:
    """Loss and gradients of the whole global batch in this process."""
    model = ToyAligner(gather_with_grad)
    beam, gps, masks = global_batch()
    loss = model(beam, gps, masks)
    loss.backward()
    return {"loss": loss.detach(), **{n: p.grad.clone() for n, p in model.named_parameters()}}


def global_embeddings() -> tuple[Tensor, Tensor]:
    """Beam and GPS embeddings ``[B, P, D]`` of the global batch, as leaves of the graph."""
    generator = torch.Generator().manual_seed(2)
    windows = sum(LOCAL_WINDOWS)
    beam_z = torch.randn(windows, PAST, EMBED, generator=generator)
    gps_z = torch.randn(windows, PAST, EMBED, generator=generator)
    return beam_z, gps_z


def embedding_grads(part: slice, gather_with_grad: bool, rank: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss, d loss / d beam embeddings, d loss / d gps embeddings)`` of the windows ``part``."""
    beam_z, gps_z = (z[part].clone().requires_grad_() for z in global_embeddings())
    _, _, masks = global_batch()
    alignment = AnchorAlignment([("beam", "gps")], gather_with_grad=gather_with_grad)
    if dist.is_initialized():
        alignment.set_world(rank, WORLD)
    loss = alignment({"beam": beam_z, "gps": gps_z}, {m: v[part] for m, v in masks.items()})["loss"]
    loss.backward()
    return loss.detach(), beam_z.grad, gps_z.grad


def worker(rank: int, port: int, out_dir: str) -> None:
    """One DDP rank: both ``gather_with_grad`` settings; saves ``{setting: results}`` for the parent."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        results = {}
        for gather_with_grad in (True, False):
            model = ToyAligner(gather_with_grad)
            model.alignment.set_world(rank, WORLD)
            ddp = DistributedDataParallel(model)  # averages every parameter's gradient over the ranks
            beam, gps, masks = global_batch()
            part = local_slice(rank)
            loss = ddp(beam[part], gps[part], {m: v[part] for m, v in masks.items()})
            loss.backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters()}
            leaf_loss, beam_grad, gps_grad = embedding_grads(part, gather_with_grad, rank)
            results[gather_with_grad] = {
                "loss": loss.detach(),
                **grads,
                "leaf_loss": leaf_loss,
                "beam_z_grad": beam_grad,
                "gps_z_grad": gps_grad,
            }
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[bool, dict[str, Tensor]]]:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


# float32 sums in another order (gathered blocks vs one matrix): agreement to ~1e-7 relative is expected
TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.mark.parametrize("gather_with_grad", [True, False])
def test_every_rank_gets_the_single_process_loss(ddp_results: list, gather_with_grad: bool) -> None:
    expected = single_process(gather_with_grad)["loss"]
    for rank in range(WORLD):
        torch.testing.assert_close(ddp_results[rank][gather_with_grad]["loss"], expected, **TOL)


def test_gather_with_grad_gives_the_single_process_gradients(ddp_results: list) -> None:
    expected = single_process(gather_with_grad=True)
    for rank in range(WORLD):
        for name in ("beam.weight", "beam.bias", "gps.weight", "gps.bias", "alignment.log_scales.beam__gps"):
            torch.testing.assert_close(ddp_results[rank][True][name], expected[name], **TOL, msg=name)


def test_without_gather_with_grad_encoder_gradients_shrink_by_the_world_size(ddp_results: list) -> None:
    # only a rank's own rows carry gradient, so DDP's average holds 1/world of the encoders' gradient;
    # the temperature sees the whole loss on every rank and keeps its gradient
    expected = single_process(gather_with_grad=False)
    for name in ("beam.weight", "gps.weight"):
        torch.testing.assert_close(ddp_results[0][False][name], expected[name] / WORLD, **TOL, msg=name)
    name = "alignment.log_scales.beam__gps"
    torch.testing.assert_close(ddp_results[0][False][name], expected[name], **TOL)


def test_embedding_gradients_match_when_gathered_with_grad(ddp_results: list) -> None:
    loss, beam_grad, gps_grad = embedding_grads(slice(None), gather_with_grad=True)
    for rank in range(WORLD):
        result = ddp_results[rank][True]
        torch.testing.assert_close(result["leaf_loss"], loss, **TOL)
        # every rank's loss is the global loss and the gather sums all ranks' gradients, so each rank
        # holds world x the single-process gradient of its rows; DDP's average over ranks divides it out
        part = local_slice(rank)
        torch.testing.assert_close(result["beam_z_grad"] / WORLD, beam_grad[part], **TOL)
        torch.testing.assert_close(result["gps_z_grad"] / WORLD, gps_grad[part], **TOL)


def test_fit_with_ddp_on_two_cpu_processes(data_root: Path, tmp_path: Path) -> None:
    """``wmlm fit`` with the DDP strategy on two CPU processes runs both stages and writes checkpoints.

    About 45 s on 2 shared cores, mostly the second process importing torch and Lightning.
    ``ddp_find_unused_parameters_true``: stage 1 leaves backbone and heads unused and stage 2 the
    temperatures, which plain ``ddp`` rejects. With several processes the data module hands Lightning a
    plain shuffled loader, so every rank reads its own share through Lightning's ``DistributedSampler``.
    """
    out = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "wmlm",
        "fit",
        "--config",
        str(CONF / "beam_gps.yaml"),
        "--data.init_args.root",
        str(data_root),
        "--trainer.default_root_dir",
        str(out),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        str(WORLD),
        "--trainer.strategy",
        "ddp_find_unused_parameters_true",
        "--test_after_fit",
        "false",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-4000:]
    checkpoint = next(out.rglob("last.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] > 0
