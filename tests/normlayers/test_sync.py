"""Synchronized BGN: torch's conversion finds it, and 2 processes equal 1 process with the whole batch."""

from __future__ import annotations

import pytest
import sync_worker
import torch
import torch.multiprocessing as mp
from torch import nn

from normlayers import BatchGroupNorm, GroupStatistics, SyncGroupStatistics, convert_sync_norms, create_norm, revert_sync_norms

STEPS = 3


def test_convert_sync_batchnorm_syncs_group_statistics_instead_of_making_bn() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), create_norm("bgn:num_groups=2", 8), create_norm("bn", 8))
    model[1](torch.randn(4, 8, 5, 5))  # give it some running statistics
    running = model[1].running_mean.clone()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    bgn = converted[1]
    assert isinstance(bgn, BatchGroupNorm) and bgn.is_synchronized
    assert isinstance(bgn.stats, nn.SyncBatchNorm) and bgn.stats.num_features == 2
    torch.testing.assert_close(bgn.running_mean, running)
    assert isinstance(converted[2], nn.SyncBatchNorm) and converted[2].num_features == 8
    # without an initialized process group the converted layer computes the ordinary local BGN
    x = torch.randn(4, 8, 5, 5)
    reference = create_norm("bgn:num_groups=2", 8)
    torch.testing.assert_close(bgn.train()(x), reference(x))


@pytest.mark.parametrize("converter", ["torch", "normlayers"])
def test_two_processes_equal_one_process_with_the_whole_batch(tmp_path, converter) -> None:
    """torch's conversion (Lightning's sync_batchnorm) and convert_sync_norms both give synced BGN."""
    mp.spawn(
        sync_worker.worker,
        args=(2, str(tmp_path / "rendezvous"), str(tmp_path), STEPS, converter),
        nprocs=2,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    expected_stats = "SyncBatchNorm" if converter == "torch" else "SyncGroupStatistics"
    assert expected_stats in ranks[0]["types"] and "BatchGroupNorm" in ranks[0]["types"]

    single = sync_worker.run_steps(sync_worker.build_model(), slice(None), STEPS, lambda m: None)
    n0, n1 = sync_worker.SPLITS

    def interleave(key: str) -> torch.Tensor:  # rank 0's rows then rank 1's, step by step
        first, second = ranks[0][key].split(n0), ranks[1][key].split(n1)
        return torch.cat([torch.cat(pair) for pair in zip(first, second)])

    torch.testing.assert_close(interleave("outputs"), single["outputs"])
    torch.testing.assert_close(interleave("input_grads"), single["input_grads"])
    torch.testing.assert_close(torch.cat([ranks[0]["eval"], ranks[1]["eval"]]), single["eval"])
    # parameters (updated with the summed gradients) and running statistics agree everywhere
    for key, value in single["state"].items():
        for rank in ranks:
            torch.testing.assert_close(rank["state"][key], value, msg=lambda m: f"{key}: {m}")


def test_convert_sync_norms_leaves_no_syncbatchnorm_for_bgn_and_reverts() -> None:
    """DDP refuses SyncBatchNorm modules in CPU models; BGN's own synced statistics are not one."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), create_norm("bgn:num_groups=2", 8), create_norm("bn", 8))
    model[1](torch.randn(4, 8, 5, 5))
    running = model[1].running_var.clone()
    converted = convert_sync_norms(model, process_group=None)
    bgn = converted[1]
    assert isinstance(bgn.stats, SyncGroupStatistics) and not isinstance(bgn.stats, nn.SyncBatchNorm)
    assert bgn.is_synchronized and bgn.stats.num_batches_tracked.item() == 1
    torch.testing.assert_close(bgn.running_var, running)
    assert isinstance(converted[2], nn.SyncBatchNorm)  # BN still goes through torch's conversion
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in bgn.modules())
    reverted = revert_sync_norms(converted)
    assert type(reverted[1].stats) is GroupStatistics and not reverted[1].is_synchronized
    torch.testing.assert_close(reverted[1].running_var, running)
