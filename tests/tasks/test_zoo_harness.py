"""The harness with the new norms: the ramp callback, `normbench norms`, and the code that adapts or freezes statistics."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn

from normlayers import create_norm
from tasks.adversarial.layer_mode import attack_layer_mode, running_statistics
from tasks.cli import main
from tasks.fewshot.protocol import BufferGuard, set_evaluation_modes
from tasks.runner.ramp import RampSchedule, ramp_layers
from tasks.uda.adabn import adapt_running_stats, adaptable_layers, statistics_modules

STATEFUL = ["brn", "evonorm_b0", "sn"]


def _net(spec: str) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), create_norm(spec, 4), nn.ReLU(), nn.Conv2d(4, 4, 3),
                         create_norm(spec, 4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


# --- the ramp -------------------------------------------------------------------------------------

def test_ramp_layers_are_found_by_interface_not_class() -> None:
    assert len(ramp_layers(_net("brn"))) == 2
    assert ramp_layers(_net("bn")) == [] and ramp_layers(_net("sn")) == []


@pytest.mark.parametrize("per_batch, global_step, expected", [(1, 7, 7), (2, 7, 3), (2, 8, 4)])
def test_the_hook_sets_the_optimizer_steps_taken(per_batch: int, global_step: int, expected: int) -> None:
    module = _net("brn")
    callback = RampSchedule(per_batch)
    callback.on_train_start(SimpleNamespace(), module)
    layers = ramp_layers(module)
    assert all(layer.ramp_driver == "external" for layer in layers)
    callback.on_train_batch_start(SimpleNamespace(global_step=global_step), module, None, 0)
    assert [int(layer.ramp_step) for layer in layers] == [expected, expected]
    module.train()(torch.randn(4, 3, 6, 6))  # forwards no longer move it
    assert [int(layer.ramp_step) for layer in layers] == [expected, expected]


class _TwoForwards(L.LightningModule):
    """Two train-mode forwards per optimizer step (as MAML's clones or DARTS' unrolled passes do)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _net("brn")
        self.seen: list[int] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.append(int(ramp_layers(self.net)[0].ramp_step))
        self.net(x)
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_in_a_lightning_run_the_ramp_follows_optimizer_steps(tmp_path) -> None:
    data = torch.utils.data.TensorDataset(torch.randn(20, 3, 6, 6), torch.randint(0, 2, (20,)))
    module = _TwoForwards()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[RampSchedule(1)],
                        default_root_dir=tmp_path)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    assert module.seen == [0, 1, 2, 3, 4]  # one per optimizer step, although each step ran two forwards
    assert all(int(layer.num_batches_tracked) == 10 for layer in ramp_layers(module.net))


# --- `normbench norms` ----------------------------------------------------------------------------

def test_normbench_norms_prints_aligned_columns_with_the_activation(capsys) -> None:
    assert main(["norms"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0]
    assert head.split()[:2] == ["name", "label"] and "activation" in head
    start = head.index("activation")
    rows = {line.split()[0]: line for line in lines[1:] if line.strip() and not line.startswith("spec syntax")}
    assert {"bn", "bgn", "brn", "frn", "evonorm_b0", "evonorm_s0", "sn", "none"} <= set(rows)
    assert rows["frn"][start:].startswith("TLU ") and rows["bn"][start:].startswith("- ")
    desc = head.index("description")
    assert all(row[desc - 1] == " " for row in rows.values())  # every description starts in the same column


# --- AdaBN, attack modes, few-shot buffer guards --------------------------------------------------

@pytest.mark.parametrize("spec", STATEFUL)
def test_adabn_finds_and_re_estimates_the_running_statistics(spec: str) -> None:
    net = _net(spec).train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 3, 6, 6))
    assert len(adaptable_layers(net)) == 2
    assert all(statistics_modules(layer) == [layer] for _, layer in adaptable_layers(net))
    target = [torch.randn(8, 3, 6, 6) * 2 + 1 for _ in range(3)]
    adapted, modules, images = adapt_running_stats(net.eval(), target)
    assert (modules, images) == (2, 24)
    first = adapted[1]
    # the first norm sees conv(x) only, so its re-estimated variance is the cumulative average over the batches
    with torch.no_grad():
        feats = [net[0](x) for x in target]
    expected = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(first.running_var, expected, rtol=1e-4, atol=1e-5)
    assert not torch.equal(first.running_var, net[1].running_var)  # the source model is untouched


def test_adabn_skips_sn_without_its_bn_member() -> None:
    assert all(statistics_modules(layer) == [] for _, layer in adaptable_layers(_net("sn:members=in+ln")))


@pytest.mark.parametrize("spec", STATEFUL)
def test_train_mode_attacks_leave_every_statistic_and_the_ramp_untouched(spec: str) -> None:
    net = _net(spec).train()
    saved = {k: v.clone() for k, v in running_statistics(net).items()}
    assert any(k.endswith("running_var") for k in saved)
    with attack_layer_mode(net, "train"):
        net(torch.randn(6, 3, 6, 6) * 5)
    assert all(torch.equal(v, saved[k]) for k, v in running_statistics(net).items())


@pytest.mark.parametrize("spec", STATEFUL)
def test_transductive_evaluation_episodes_are_undone_by_the_buffer_guard(spec: str) -> None:
    net = _net(spec)
    set_evaluation_modes(net, "transductive")
    assert all(net[i].training for i in (1, 4)) and not net[0].training
    guard = BufferGuard(net)
    guard.capture()
    before = [b.clone() for b in net.buffers()]
    with guard.episode():
        net(torch.randn(5, 3, 6, 6))
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))
