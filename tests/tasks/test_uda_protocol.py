"""Domain adaptation's protocol choices (issue 19): the record's batch is what one normalizing forward holds,
the learning rate follows the per-domain batch, selection can take the last checkpoint, AdaBN after DANN/CDAN,
and the medium profile and sweep are what their headers say."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from normlayers import find_norm_layers
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare
from tasks.runner.run import execute
from tasks.uda.config import effective_lr, normalization_batch
from tasks.uda.module import UdaModule
from tasks.uda.task import UDA

pytestmark = pytest.mark.usefixtures("no_data_root")  # tests/tasks/conftest.py, with fm_cache
REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "uda" / "quick.yaml")
MEDIUM = str(REPO / "configs" / "uda" / "medium.yaml")



def parsed(*args: str, config: str = QUICK):
    return parse_config(UDA, ["--config", config, *args], raise_errors=True)


@pytest.mark.parametrize("method, domain_batches, per_domain, expected", [
    ("dann", "joint", 32, 64), ("cdan", "joint", 4, 8),  # source and target concatenated: one pass of 2 x batch
    ("dann", "separate", 32, 32), ("cdan", "separate", 4, 4),  # one pass per domain
    ("source_only", "joint", 32, 32), ("oracle", "separate", 8, 8),  # one domain only
])
def test_the_normalizing_batch_counts_what_one_forward_pass_concatenates(method, domain_batches, per_domain,
                                                                         expected) -> None:
    cfg = parsed("--method", method, "--domain_batches", domain_batches, "--batch_size", str(per_domain))
    assert normalization_batch(cfg) == UDA.normalization_batch(cfg) == expected


def test_the_learning_rate_scales_linearly_with_the_per_domain_batch_unless_told_not_to() -> None:
    assert effective_lr(parsed("--batch_size", "32")) == pytest.approx(0.01)  # the base batch: lr as written
    assert effective_lr(parsed("--batch_size", "4", "--method", "dann")) == pytest.approx(0.01 * 4 / 32)
    assert effective_lr(parsed("--batch_size", "4", "--method", "source_only")) == pytest.approx(0.01 * 4 / 32)
    assert effective_lr(parsed("--batch_size", "64"), world_size=2) == pytest.approx(0.01 * 128 / 32)
    assert effective_lr(parsed("--batch_size", "4", "--optim.lr_scaling", "none")) == pytest.approx(0.01)
    assert effective_lr(parsed("--batch_size", "16", "--optim.base_batch_size", "16")) == pytest.approx(0.01)
    assert UDA.protocol(parsed("--optim.lr_scaling", "none")) == {"domain_batches": "joint", "lr_scaling": "none"}


@pytest.mark.parametrize("args", [
    ("--method", "dann"),
    ("--method", "dann", "--domain_batches", "separate"),
    ("--method", "source_only", "--selection", "last"),
])
def test_record_batch_size_is_the_images_one_normalizing_forward_sees_in_training(args, tmp_path: Path, fm_cache: Path,
                                                                                  monkeypatch) -> None:
    """A forward hook on the first norm layer counts N of every training-mode call: all equal the record's."""
    seen: list[int] = []
    original = UdaModule.on_fit_start

    def hooked(self) -> None:
        _, first, _ = next(iter(find_norm_layers(self.net)))
        trainer = self.trainer  # training steps only (not validation, nor the AdaBN pass of the copied network)
        first.register_forward_hook(lambda layer, inputs, output: seen.append(len(inputs[0]))
                                    if layer.training and trainer.training else None)
        original(self)

    monkeypatch.setattr(UdaModule, "on_fit_start", hooked)
    cfg = UDA.shrink(parsed("--out_dir", str(tmp_path), "--data.cache_dir", str(fm_cache), "--trainer.epochs", "2",
                            "--trainer.max_steps", "24", *args))
    outcome = execute(cfg, UDA)
    assert outcome.status == "finished", outcome.message
    record = outcome.record
    joint = "separate" not in args and "dann" in args
    assert record["per_domain_batch_size"] == 8 and record["batch_size"] == (16 if joint else 8)
    assert record["coordinates"]["per_domain_batch_size"] == 8
    # 24 steps: one pass per step (joint, source-only) or two (separate), each of the record's batch
    assert seen == [record["batch_size"]] * (24 * (2 if "separate" in args else 1))
    assert f"-bs{record['batch_size']}-s0" in record["run_id"]
    if "last" in args:  # selection: last reports the last checkpoint under both names
        assert record["selection"]["rule"] == "last"
        assert record["test/target_acc"] == record["last/test/target_acc"]
        assert record["test/target_acc_adabn"] == record["last/test/target_acc_adabn"]


def test_medium_profile_is_dann_at_the_measured_budget_and_its_sweep_expands(tmp_path: Path) -> None:
    from tasks.sweep.expand import expand_sweep
    from tasks.sweep.spec import load_sweep

    cfg = prepare(parsed(config=MEDIUM), UDA)
    assert (cfg.profile, cfg.selection, cfg.method) == ("medium", "last", "dann")
    sweep = dataclasses.replace(load_sweep(REPO / "configs" / "sweeps" / "medium_uda.yaml"), out_dir=tmp_path)
    planned = expand_sweep(sweep)
    assert planned and all(p.state == "new" for p in planned), [p.reason for p in planned if p.state != "new"]
    cells = {(p.config.norm, p.config.batch_size, p.config.method, p.config.seed) for p in planned}
    norms = {c[0] for c in cells}
    assert norms == {"bn", "gn:num_groups=8", "ln", "bgn:elements=1024,num_groups=auto", "bgn:num_groups=1",
                     "bgn:num_groups=16"}
    assert {c[1] for c in cells} == {8, 32} and {c[2] for c in cells} == {"source_only", "dann"}
    assert {c[3] for c in cells} == {0, 1, 2} and len(cells) == len(planned) == 6 * 2 * 2 * 3
    gn = [n for n in norms if n.startswith("gn")][0]
    layers = [layer for _, layer, _ in find_norm_layers(UDA.build_network(parsed("--norm", gn, config=MEDIUM)))]
    channels, groups = [layer.num_channels for layer in layers], [layer.num_groups for layer in layers]
    assert all(c // g >= 2 for c, g in zip(channels, groups)), (channels, groups)  # GN, not IN, on every layer
