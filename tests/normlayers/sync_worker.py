"""Worker for the 2-process synchronized-BGN test (importable by spawned processes)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from normlayers import convert_sync_norms, create_norm

SPLITS = (3, 2)  # uneven on purpose: 5 samples over 2 processes


def build_model() -> nn.Module:
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        create_norm("bgn:num_groups=2", 8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        create_norm("bgn:num_groups=32", 8),  # more groups than channels
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
        create_norm("bgn:num_groups=4", 4),  # G = C: the BatchNorm shortcut, synchronized
    ).double()
    return model


def batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2)
    return [
        (torch.randn(sum(SPLITS), 3, 4, 4, generator=gen, dtype=torch.double) * 2 + 1,
         torch.randn(sum(SPLITS), 4, 4, 4, generator=gen, dtype=torch.double))
        for _ in range(steps)
    ]


def run_steps(model: nn.Module, rows: slice, steps: int, reduce_grads) -> dict[str, torch.Tensor]:
    """Train a few SGD steps on ``rows`` of each batch; loss = sum(y * target) over the whole batch."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    outputs, input_grads = [], []
    for x, target in batches(steps):
        x = x[rows].clone().requires_grad_(True)
        y = model(x)
        (y * target[rows]).sum().backward()
        reduce_grads(model)
        outputs.append(y.detach())
        input_grads.append(x.grad.detach())
        opt.step()
        opt.zero_grad()
    model.eval()
    eval_x = batches(1)[0][0][rows]
    return {
        "outputs": torch.cat(outputs),
        "input_grads": torch.cat(input_grads),
        "eval": model(eval_x).detach(),
        "state": {k: v.clone() for k, v in model.state_dict().items()},
    }


def worker(rank: int, world: int, init_file: str, out_dir: str, steps: int, converter: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        convert = nn.SyncBatchNorm.convert_sync_batchnorm if converter == "torch" else convert_sync_norms
        model = convert(build_model())
        start = sum(SPLITS[:rank])
        rows = slice(start, start + SPLITS[rank])

        def sum_grads(m: nn.Module) -> None:  # what DDP does, without its averaging
            for p in m.parameters():
                dist.all_reduce(p.grad)

        result = run_steps(model, rows, steps, sum_grads)
        result["types"] = [type(m).__name__ for m in model.modules()]
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
