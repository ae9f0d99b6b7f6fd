"""CPU time of one run of a NAS profile, from measured step costs: how the medium sweep's header was sized.

    python -m tasks.nas.medium_cost                          # configs/nas/medium.yaml, batches 8 and 32, BN

A whole medium run takes about a quarter of an hour; on a shared machine its
wall time says more about the neighbours than about the run. This measures the
process CPU time (``time.process_time``, one torch thread) of a few first-order
search steps (alpha gradient + weight step) and retrain steps (auxiliary head
included) of the profile's networks on random inputs, and of evaluation
forwards, and multiplies by the profile's step counts. The retrained cell is
DARTS_V2 (conv-heavy; a searched cell of pools and skips costs less).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F

from ..runner.parse import parse_config
from .bilevel import first_order_gradient
from .genotypes import PUBLISHED
from .network import EvalNetwork
from .supernet import SuperNet
from .task import NAS


def cpu_seconds(step: Callable[[], None], repeats: int) -> float:
    """Mean process CPU seconds of ``step`` over ``repeats`` calls, after one untimed call."""
    step()
    start = time.process_time()
    for _ in range(repeats):
        step()
    return (time.process_time() - start) / repeats


def run_cost(config: str, batch: int, norm: str, train_images: int, repeats: int) -> dict[str, float]:
    """Estimated CPU seconds of the search, the retrain and the evaluations of one run at ``batch``."""
    cfg = parse_config(NAS, ["--config", config, "--batch_size", str(batch), "--norm", norm], raise_errors=True)
    s, r = cfg.search, cfg.retrain
    supernet = SuperNet(s.channels, 10, s.layers, norm, 1)
    network = EvalNetwork(PUBLISHED["DARTS_V2"], r.channels, 10, r.layers, cfg.retrain_norm, 1,
                          auxiliary=r.auxiliary_weight > 0)
    sgd = torch.optim.SGD(supernet.weight_parameters(), lr=0.01, momentum=0.9)
    sgd_r = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)

    def batch_of(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, 1, 32, 32), torch.randint(0, 10, (n,))

    def search_step() -> None:
        first_order_gradient(supernet, supernet.arch_parameters(), batch_of(batch))
        x, y = batch_of(batch)
        sgd.zero_grad()
        F.cross_entropy(supernet(x), y).backward()
        sgd.step()

    def retrain_step() -> None:
        x, y = batch_of(batch)
        logits, aux = network(x)
        loss = F.cross_entropy(logits, y) + (r.auxiliary_weight * F.cross_entropy(aux, y) if aux is not None else 0)
        sgd_r.zero_grad()
        loss.backward()
        sgd_r.step()

    def forward_of(net: torch.nn.Module) -> Callable[[], None]:
        def forward() -> None:
            with torch.no_grad():
                net.eval()(batch_of(256)[0])
                net.train()
        return forward

    search_images = round(s.fraction * train_images)
    search_batches = s.epochs * (int(s.train_portion * search_images) // batch)
    retrain_batches = cfg.trainer.epochs * math.ceil(train_images / cfg.retrain_batch_size)
    val, test = cfg.data.val_size, round(cfg.data.test_fraction * 10000)
    evaluation = (s.epochs * val * cpu_seconds(forward_of(supernet), 1)
                  + (cfg.trainer.epochs * val + test) * cpu_seconds(forward_of(network), 1)) / 256
    costs = {"search": search_batches * cpu_seconds(search_step, repeats),
             "retrain": retrain_batches * cpu_seconds(retrain_step, repeats), "evaluation": evaluation}
    return {**costs, "total": sum(costs.values())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/nas/medium.yaml")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--norm", default="bn")
    parser.add_argument("--train-images", type=int, default=5950, help="the profile's training split (medium: 5,950)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for batch in args.batch_sizes:
        cost = run_cost(args.config, batch, args.norm, args.train_images, args.repeats)
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.0f}" for k, v in cost.items()) + " CPU s", flush=True)


if __name__ == "__main__":
    main()
