"""Alpha's schedule in the DARTS search: warm-up, updates held fixed across the batch axis, budget-scaled lr,
and the record's measure of how far alpha moved (docs/nas.md, "Architecture schedule")."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from tasks.nas.arch_schedule import DARTS_ARCH_UPDATES, accumulation_batches, arch_schedule
from tasks.nas.genotypes import PRIMITIVES
from tasks.nas.search_module import alpha_movement
from tasks.nas.task import NAS
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "nas" / "quick.yaml")


def test_darts_reference_is_50_epochs_of_391_batches() -> None:
    assert DARTS_ARCH_UPDATES == 19550 == 50 * math.ceil(25000 / 64)


def test_warmup_and_budget_scaling_of_the_quick_search() -> None:
    schedule = arch_schedule(64, warmup=0.25, accumulate=1, arch_lr=3e-4, scaling="budget", reference_updates=19550)
    assert schedule.warmup_batches == 16 and schedule.updates == 48
    assert schedule.lr == pytest.approx(3e-4 * 19550 / 48)  # 0.1222: lr x updates is DARTS' 3e-4 x 19,550
    assert [b for b in range(64) if schedule.steps(b)] == list(range(16, 64))
    assert not schedule.computes_gradient(15) and schedule.computes_gradient(16)
    darts = arch_schedule(64, warmup=0.0, accumulate=1, arch_lr=3e-4, scaling="none", reference_updates=19550)
    assert darts.lr == 3e-4 and darts.updates == 64 and darts.steps(0)


def test_fixed_updates_across_the_batch_axis() -> None:
    """1,024 alpha-half images for 2 epochs: batch 8 and batch 32 both make 48 updates after a quarter's warm-up."""
    updates = {}
    for batch in (8, 32):
        total = 2 * 1024 // batch
        schedule = arch_schedule(total, warmup=0.25, accumulate=accumulation_batches(batch, 32), arch_lr=3e-4,
                                 scaling="budget", reference_updates=19550)
        updates[batch] = (schedule.updates, schedule.lr, sum(schedule.steps(b) for b in range(total)))
    assert updates[8] == updates[32] == (48, pytest.approx(3e-4 * 19550 / 48), 48)
    small = arch_schedule(256, warmup=0.25, accumulate=4, arch_lr=3e-4, scaling="none", reference_updates=1)
    assert [b for b in range(64, 80) if small.steps(b)] == [67, 71, 75, 79]  # the last batch of each window of 4
    assert small.computes_gradient(64) and not small.steps(64)


def test_update_batch_must_be_a_multiple_of_the_batch() -> None:
    assert accumulation_batches(8, None) == 1 and accumulation_batches(8, 64) == 8
    with pytest.raises(ValueError, match="not a multiple of the search batch 24"):
        accumulation_batches(24, 64)


def test_alpha_movement_measures_entropy_and_genotype_change() -> None:
    torch.manual_seed(0)
    initial = (1e-3 * torch.randn(14, 8), 1e-3 * torch.randn(14, 8))
    same = alpha_movement(initial, initial)
    assert same["search/alpha_entropy_norm_start"] == same["search/alpha_entropy_norm_end"] > 0.99999
    assert same["search/alpha_entropy_norm_drop"] == 0 and same["search/genotype_changed"] is False
    assert same["search/edges_changed"] == 0
    final = tuple(torch.zeros(14, 8) for _ in range(2))
    for alpha in final:
        alpha[:, PRIMITIVES.index("sep_conv_3x3")] = 50.0  # every edge: one op
    moved = alpha_movement(initial, final)
    assert moved["search/alpha_entropy_norm_end"] == pytest.approx(0.0, abs=1e-6)
    assert moved["search/alpha_entropy_norm_drop"] == pytest.approx(moved["search/alpha_entropy_norm_start"], abs=1e-6)
    assert moved["search/genotype_changed"] is True and moved["search/edges_changed"] > 0.5


def shrunk(tmp_path: Path, batch_size: int, *args: str):
    cfg = parse_config(NAS, ["--config", QUICK, "--out_dir", str(tmp_path), *args], raise_errors=True)
    return dataclasses.replace(NAS.shrink(cfg), batch_size=batch_size)


def adam_steps(run_dir: Path) -> int:
    """The alpha optimizer's own step count (Adam state) in the search's last checkpoint."""
    state = torch.load(run_dir / "checkpoints" / "search" / "last.ckpt", weights_only=True)
    alpha_state = state["optimizer_states"][1]["state"]
    return int(alpha_state[0]["step"]) if alpha_state else 0


@pytest.mark.slow
def test_two_batch_sizes_make_the_same_number_of_alpha_updates(tmp_path: Path) -> None:
    """Shrunk search halves of 12 images, 2 epochs: batch 4 runs 6 batches, batch 2 runs 12; with one alpha
    update per 4 images and half the batches as warm-up both make 3 alpha updates (Adam's own count)."""
    runs = {}
    for batch in (4, 2):
        cfg = shrunk(tmp_path / f"b{batch}", batch, "--search.arch_update_batch", "4", "--search.arch_warmup", "0.5")
        outcome = execute(cfg, NAS)
        assert outcome.status == "finished", outcome.message
        record = json.loads((outcome.run_dir / "result.json").read_text())
        runs[batch] = (record["search/steps"], record["search/arch_warmup_batches"], record["search/arch_updates"],
                       adam_steps(outcome.run_dir))
        assert record["protocol"]["arch_updates"] == "one per 4 alpha-half images"
    assert runs[4] == (6, 3, 3, 3) and runs[2] == (12, 6, 3, 3)
