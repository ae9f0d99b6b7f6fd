"""bgn:num_groups=auto in the harness: G is chosen per layer for the configured batch, recorded, and resumed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from run_helpers import interrupt

from normlayers import AutoBatchGroupNorm, choose_groups, set_normalization_batch
from tasks.classification.module import ClassificationModule
from tasks.classification.task import CLASSIFICATION
from tasks.runner.errors import ConfigError
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "classification" / "quick.yaml")
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")
AUTO = "bgn:elements=1024"


def _features_per_layer(net: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """C*H*W each auto layer sees (forward hooks on an eval pass at batch 2, G chosen from a hint)."""
    seen: dict[str, int] = {}
    def hook(name: str):
        def record(module, args) -> None:
            seen.setdefault(name, math.prod(args[0].shape[1:]))
        return record

    hooks = [m.register_forward_pre_hook(hook(name)) for name, m in net.named_modules() if isinstance(m, AutoBatchGroupNorm)]
    with torch.no_grad():
        net.eval()(torch.zeros(2, *input_shape))
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize(("batch", "first", "last"), [(2, 28, 7), (16, 196, 49), (128, 1568, 392)])
def test_quick_resnet_chooses_per_layer_for_the_batch(batch, first, last) -> None:
    cfg = parse_config(CLASSIFICATION, ["--config", QUICK, "--norm", AUTO], raise_errors=True)
    net = CLASSIFICATION.build_network(cfg)
    assert set_normalization_batch(net, batch) > 0
    features = _features_per_layer(net, CLASSIFICATION.input_shape(cfg))
    assert set(features.values()) == {12544, 6272, 3136}  # the quick ResNet-8's three stages
    groups = {name: m.num_groups for name, m in net.named_modules() if isinstance(m, AutoBatchGroupNorm)}
    assert groups == {name: choose_groups(batch, d, 1024) for name, d in features.items()}
    # hand-checked: 12544 values at batch 2 -> target 24.5 -> 28; 3136 at batch 2 -> 6.1 -> 7; batch 16 and
    # 128 hit divisors exactly (196, 49, 1568, 392)
    assert {groups[n] for n, d in features.items() if d == 12544} == {first}
    assert {groups[n] for n, d in features.items() if d == 3136} == {last}


def _config(tmp_path: Path, *args: str):
    return parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--norm", AUTO, *args],
                        raise_errors=True)


def test_the_run_chooses_for_the_configured_batch_and_records_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "--batch_size", "16")
    outcome = execute(cfg, CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    record = outcome.record
    assert record["norm"] == "bgn:elements=1024,num_groups=auto" and record["norm_label"] == "BGN (G=auto, M=1024)"
    assert record["norm_num_groups"] is None and record["norm_args"]["num_groups"] == "auto"
    features = _features_per_layer(_hinted(cfg), CLASSIFICATION.input_shape(cfg))
    expected = {f"net.{name}": choose_groups(16, d, 1024) for name, d in features.items()}
    assert record["norm_groups_per_layer"] == expected
    assert expected != {f"net.{name}": choose_groups(2, d, 1024) for name, d in features.items()}  # not the dry pass's 2
    assert record["norm_elements_per_statistic"] == {
        f"net.{name}": 16 * d // expected[f"net.{name}"] for name, d in features.items()}


def _hinted(cfg) -> torch.nn.Module:
    net = CLASSIFICATION.build_network(cfg)
    set_normalization_batch(net, cfg.batch_size)
    return net


def test_an_interrupted_run_resumes_with_the_stored_groups(tmp_path: Path, monkeypatch) -> None:
    cfg = _config(tmp_path)
    chosen: list[dict[str, int]] = []

    def groups(module) -> dict[str, int]:
        return {n: m.num_groups for n, m in module.named_modules() if isinstance(m, AutoBatchGroupNorm)}

    def at_step_12(module, batch_idx) -> bool:
        if module.global_step != 12:
            return False
        chosen.append(groups(module))
        return True

    run_dir = interrupt(monkeypatch, ClassificationModule, lambda: execute(cfg, CLASSIFICATION), at_step_12, tmp_path)
    state = torch.load(run_dir / "checkpoints" / "interrupted.ckpt", weights_only=True)["state_dict"]
    assert {k[: -len("._extra_state")]: v["num_groups"] for k, v in state.items() if k.endswith("_extra_state")} == chosen[0]
    outcome = execute(cfg, CLASSIFICATION)
    assert outcome.status == "finished" and outcome.record["norm_groups_per_layer"] == chosen[0]


def test_refused_with_compile_and_checked_per_batch(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trainer.compile=true with norm bgn:elements=1024,num_groups=auto"):
        prepare(_config(tmp_path, "--trainer.compile", "true"), CLASSIFICATION)
    for batch in ("2", "64"):  # the dry pass (eval mode, batch 2) chooses G from the configured batch: no refusal
        assert prepare(_config(tmp_path, "--batch_size", batch), CLASSIFICATION).norm == "bgn:elements=1024,num_groups=auto"


def test_nas_chooses_per_stage_for_its_own_batch(tmp_path: Path) -> None:
    """The supernet (search stage, batch 4) and the final network (retrain stage, batch 8) each choose for their
    own batch, and DARTS' stateless architecture step (copied buffers) does not break the layers."""
    import dataclasses

    from tasks.registry import get_task

    nas = get_task("nas")
    cfg = nas.shrink(parse_config(nas, ["--config", str(REPO / "configs" / "nas" / "quick.yaml"), "--norm", AUTO,
                                        "--out_dir", str(tmp_path)], raise_errors=True))
    cfg = dataclasses.replace(cfg, batch_size=4, retrain=dataclasses.replace(cfg.retrain, batch_size=8))
    outcome = execute(cfg, nas)
    assert outcome.status == "finished", outcome.message
    groups, elements = outcome.record["norm_groups_per_layer"], outcome.record["norm_elements_per_statistic"]
    assert {name.split("/")[0] for name in groups} == {"search", "retrain"}
    for stage, batch in (("search", 4), ("retrain", 8)):  # the checkpoints hold each layer's choice
        state = torch.load(outcome.run_dir / "checkpoints" / stage / "last.ckpt", weights_only=True)["state_dict"]
        choices = {f"{stage}/{k[: -len('._extra_state')]}": v for k, v in state.items() if k.endswith("._extra_state")}
        assert choices and {name for name in groups if name.startswith(stage + "/")} == set(choices)
        for name, choice in choices.items():
            assert choice["batch"] == batch and choice["elements"] == 1024, name
            assert groups[name] == choice["num_groups"] == choose_groups(batch, choice["features"], 1024), name
            assert elements[name] == batch * choice["features"] // choice["num_groups"], name
