"""Few-shot norm modes side by side: both modes in one run and one table, what "running" means per method,
test-time steps from one adaptation, and the step selection on validation episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_fewshot_runs import record_of, tiny

from normlayers import find_norm_layers
from tasks.fewshot import metrics, mode_gap
from tasks.fewshot.data.episodes import FixedTaskset, fixed_episode_indices, meta_dataset
from tasks.fewshot.data.fashion_rot import load_fashion_rot
from tasks.fewshot.metrics import EPISODE_FILE, read_episode_accuracies
from tasks.fewshot.module import FewShotModule
from tasks.fewshot.protocol import BufferGuard, other_norm_mode, set_evaluation_modes
from tasks.fewshot.select_steps import load_run, steps_accuracies
from tasks.fewshot.select_steps import main as select_main
from tasks.fewshot.task import FEWSHOT
from tasks.runner.run import execute

SPLIT = load_fashion_rot(None, "test", 0, 20)
TASKS = FixedTaskset(meta_dataset(SPLIT), fixed_episode_indices(SPLIT, 5, 1 + 3, 2, seed=0, split_code=2))


def _module(method: str, norm: str, norm_mode: str = "transductive") -> FewShotModule:
    inner = {"inner_lr": 0.4, "train_steps": 1, "test_steps": 3, "first_order": True}
    return FewShotModule(norm=norm, method=method, ways=5, shots=1, in_channels=1, image_size=28, filters=16,
                         forward="separate", norm_mode=norm_mode, mean=[0.286], std=[0.353], lr=1e-3,
                         lr_halve_every=0, inner=None if method == "protonet" else inner)


# ----------------------------------------------------------------------------- which runs get a second mode


@pytest.mark.parametrize("method, norm, expected", [
    ("maml", "bn", ("running", True)),
    ("maml", "bgn", ("running", True)),  # not a BatchNorm class: the registry's metadata decides
    ("protonet", "bn", ("transductive", True)),
    ("maml", "gn", ("running", False)),  # no layer uses batch statistics: the same computation, copied
    ("maml", "ln", ("running", False)),
    ("maml", "bn:track_running_stats=false", None),  # running is impossible
])
def test_the_second_mode_comes_from_the_registry(tmp_path: Path, method: str, norm: str, expected) -> None:
    second = other_norm_mode(tiny(tmp_path, "--method", method, "--norm", norm))
    assert (None if second is None else (second.mode, second.evaluated)) == expected


def test_metric_names() -> None:
    name = metrics.test_metric  # imported as a module attribute: pytest would collect a bare test_* function
    assert [name("test"), name("test", "running"), name("digits"), name("digits", "transductive")] == \
        ["test/acc", "test/running_acc", "test/digits_acc", "test/digits_transductive_acc"]


# ----------------------------------------------------------------------------- end to end


def test_maml_bn_reports_both_modes_in_one_group_paired_by_episode(tmp_path: Path) -> None:
    outcome = execute(tiny(tmp_path, "--method", "maml", "--norm", "bn", "--data.cross_domain", "digits"), FEWSHOT)
    assert outcome.status == "finished", outcome.message
    record = record_of(outcome.run_dir)
    declared = {d["name"]: d for d in record["metric_declarations"]}
    assert list(declared) == ["test/acc", "test/running_acc", "test/digits_acc", "test/digits_running_acc"]
    assert declared["test/acc"]["group"] == declared["test/running_acc"]["group"] == "norm_mode"
    assert declared["test/digits_acc"]["group"] == declared["test/digits_running_acc"]["group"] == "digits_norm_mode"
    assert declared["test/acc"]["primary"] and not declared["test/running_acc"]["primary"]
    assert declared["test/acc"]["label"].endswith("transductive (configured)")
    assert declared["test/running_acc"]["interval"] == "test/running_acc_ci95"
    assert record["test_norm_modes"] == {"transductive": "test/acc", "running": "test/running_acc"}
    assert record["data_split"] == "base_4_2_4" and record["protocol"]["norm_mode"] == "transductive"
    path = outcome.run_dir / EPISODE_FILE
    for name, metric in [("test", "test/acc"), ("test/running", "test/running_acc"),
                         ("digits/running", "test/digits_running_acc")]:
        values = read_episode_accuracies(path, name)
        assert len(values) == 6 and record[metric] == pytest.approx(sum(values) / 6, rel=1e-6)
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    hashes = {r[0]: r[3] for r in rows}
    assert hashes["test/running"] == hashes["test"] == record["test_episodes_sha256"]  # the same episodes
    # an independent evaluation of the selected weights in running mode gives the same episodes' accuracies
    cfg, module, datamodule = load_run(outcome.run_dir)
    again = steps_accuracies(module, datamodule.eval_sets["test"], [2], ["transductive", "running"])
    assert again["running"][2] == pytest.approx(record["test/running_acc"], rel=1e-6)
    assert again["transductive"][2] == pytest.approx(record["test/acc"], rel=1e-6)


def test_a_norm_without_batch_statistics_gets_the_same_value_in_both_columns(tmp_path: Path) -> None:
    outcome = execute(tiny(tmp_path, "--method", "maml", "--norm", "gn:num_groups=4"), FEWSHOT)  # 4 channels a group
    record = record_of(outcome.run_dir)
    assert record["test/running_acc"] == record["test/acc"] and record["test/running_acc_ci95"] == record["test/acc_ci95"]
    assert "no layer uses batch statistics" in record["test_norm_modes"]["running"]
    # one episode set serves both metrics (a copy would make the reporter's mean-matching pairing ambiguous)
    path = outcome.run_dir / EPISODE_FILE
    assert read_episode_accuracies(path, "test/running") == [] and len(read_episode_accuracies(path, "test")) == 6


def test_protonet_reports_transductive_beside_running(tmp_path: Path) -> None:
    record = record_of(execute(tiny(tmp_path, "--norm", "bn"), FEWSHOT).run_dir)
    assert record["protocol"]["norm_mode"] == "running"
    assert record["test_norm_modes"] == {"running": "test/acc", "transductive": "test/transductive_acc"}
    assert 0 <= record["test/transductive_acc"] <= 1 and "test/transductive_acc" in record


def test_a_norm_without_running_statistics_reports_one_mode(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, "--method", "maml", "--norm", "bn:track_running_stats=false")
    assert [m.name for m in FEWSHOT.metrics(cfg)] == ["test/acc"] and FEWSHOT.metrics(cfg)[0].group is None


# ----------------------------------------------------------------------------- what "running" means


def test_a_maml_clone_shares_running_buffers_and_takes_the_mode_it_is_cloned_in() -> None:
    module = _module("maml", "bn")
    base_layers = [layer for _, layer, _ in find_norm_layers(module.learner.adaptive)]
    episode = module.episode(*TASKS[0][1:])
    module.learner.train()
    before = base_layers[0].running_mean.clone()
    module.learner.meta_loss(episode)  # meta-training: the clone's forwards move the base model's statistics
    assert not torch.equal(base_layers[0].running_mean, before)
    for mode, training in (("transductive", True), ("running", False)):
        set_evaluation_modes(module.learner, mode)
        clone = module.learner.adaptive.clone()
        clone_layers = [layer for _, layer, _ in find_norm_layers(clone)]
        assert all(layer.training is training for layer in clone_layers)
        assert all(c.running_mean is b.running_mean for c, b in zip(clone_layers, base_layers))  # shared, not copied
    # running mode: adaptation and prediction read the base statistics and never write them
    set_evaluation_modes(module.learner, "running")
    snapshot = base_layers[0].running_mean.clone()
    clone = module.learner.adaptive.clone()
    clone.adapt(F.cross_entropy(clone(episode.support), episode.support_labels))
    clone(episode.query)
    assert torch.equal(base_layers[0].running_mean, snapshot)


@pytest.mark.parametrize("method", ["maml", "anil"])
@pytest.mark.parametrize("norm", ["bn", "bgn", "gn"])
def test_accuracies_by_steps_equal_separate_evaluations(method: str, norm: str) -> None:
    module = _module(method, norm)
    guard = BufferGuard(module.learner)
    guard.capture()
    for mode in ("transductive", "running"):
        set_evaluation_modes(module.learner, mode)
        episode = module.episode(*TASKS[1][1:])
        with guard.episode():
            trajectory = module.learner.accuracies_by_steps(episode, [1, 3, 4])
        separate = {}
        for k in (1, 3, 4):
            module.learner.test_steps = k
            with guard.episode():
                separate[k] = module.learner.evaluate(episode)
        assert trajectory == separate


# ----------------------------------------------------------------------------- choosing the steps on validation


def test_select_steps_reads_the_validation_episodes_of_finished_runs(tmp_path: Path, capsys) -> None:
    outcome = execute(tiny(tmp_path, "--method", "maml", "--norm", "bgn"), FEWSHOT)
    record = record_of(outcome.run_dir)
    out = tmp_path / "steps.json"
    assert select_main([str(outcome.run_dir), "--steps", "1", "2", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    run = result["runs"][0]
    assert result["set"] == "val" and set(run["accuracy"]) == {"transductive", "running"}
    # the shrunk config adapts 2 steps at test: the tool's 2-step value is the record's selected val/acc
    assert run["accuracy"]["transductive"]["2"] == pytest.approx(record["val/acc"], rel=1e-6)
    best = max([1, 2, 4], key=lambda k: (round(run["accuracy"]["transductive"][str(k)], 12), -k))
    assert result["best"] == best and f"{best} steps" in printed.splitlines()[-1]
    assert "| mean of 1 | | | running |" in printed


def test_select_steps_refuses_protonet_in_one_line(tmp_path: Path, capsys) -> None:
    outcome = execute(tiny(tmp_path, "--norm", "bn"), FEWSHOT)
    assert select_main([str(outcome.run_dir)]) == 2
    assert capsys.readouterr().err.strip().endswith("protonet has no adaptation steps (maml and anil do)")


# ----------------------------------------------------------------------------- the gap over seeds


def _record(norm: str, seed: int, transductive: float, running: float, copied: bool = False) -> dict:
    second = "test/running_acc (= test/acc: no layer uses batch statistics)" if copied else "test/running_acc"
    return {"task": "fewshot", "status": "finished", "norm_label": norm, "seed": seed, "axis_value": "5w1s",
            "coordinates": {"method": "maml", "ways": 5, "shots": 1}, "test/acc": transductive,
            "test/running_acc": running, "test_norm_modes": {"transductive": "test/acc", "running": second}}


def test_mode_gap_pairs_within_runs_and_takes_the_seed_as_the_unit(tmp_path: Path, capsys) -> None:
    records = [_record("BN", s, 0.5 + 0.01 * s, 0.4) for s in (0, 1, 2)] + [_record("GN", 0, 0.5, 0.5, copied=True)]
    gaps = mode_gap.gaps_by_norm(records)
    assert list(gaps) == [("BN", "maml", "5w1s")]  # GN's copy is no measurement
    assert gaps[("BN", "maml", "5w1s")] == pytest.approx({0: 0.10, 1: 0.11, 2: 0.12})
    mean, half = mode_gap.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-6)  # t(0.975, 2) * sd / sqrt(n)
    for i, r in enumerate(records):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "result.json").write_text(json.dumps(r))
    assert mode_gap.main([str(tmp_path)]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert row.startswith("| BN | maml | 5w1s | 3 | s0: +10.00, s1: +11.00, s2: +12.00 | +11.00 | [+8.52, +13.48] |")
