"""Few-shot runs end to end: the record, shared test episodes, MAML's protocol, resume, refusals, gym's notice."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.cli import main as cli_main
from tasks.fewshot.l2l import gym_notice
from tasks.fewshot.metrics import EPISODE_FILE, ci95, read_episode_accuracies
from tasks.fewshot.module import FewShotModule
from tasks.fewshot.task import FEWSHOT
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "fewshot" / "quick.yaml")


def tiny(tmp_path: Path, *args: str):
    """The quick config, shrunk to seconds (tasks.fewshot.task.FewShotTask.shrink)."""
    return FEWSHOT.shrink(parse_config(FEWSHOT, ["--config", QUICK, "--out_dir", str(tmp_path), *args],
                                       raise_errors=True))


def record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def test_protonet_run_writes_the_fewshot_record(tmp_path: Path) -> None:
    outcome = execute(tiny(tmp_path, "--norm", "bgn"), FEWSHOT)
    assert outcome.status == "finished", outcome.message
    record = record_of(outcome.run_dir)
    # the normalization batch: ProtoNet's joint forward of 5 ways x (1 shot + 3 queries)
    assert record["batch_size"] == 20 and record["images_per_step"] == 2 * 20 and record["meta_batch"] == 2
    assert "episodes per meta-update" in record["batch_size_meaning"]
    assert record["coordinates"] == {"method": "protonet", "ways": 5, "shots": 1}
    assert record["protocol"] == {"forward": "joint", "norm_mode": "running", "queries": 3, "test_queries": 3}
    assert record["table_axis"] == {"key": "ways_shots", "label": "ways/shots", "coordinates": ["ways", "shots"],
                                    "batch_size_follows": True}
    assert (record["axis_value"], record["axis_label"]) == ("5w1s", "5-way 1-shot")
    assert record["metric_declarations"][0] == {
        "name": "test/acc", "label": "mean accuracy over the fixed test episodes, running (configured)",
        "direction": "max", "unit": "fraction", "primary": True, "interval": "test/acc_ci95", "group": "norm_mode",
        "short": "running (configured)"}
    assert record["metric_declarations"][1]["name"] == "test/transductive_acc"  # BGN: both modes reported
    assert record["selection"]["monitor"] == "val/acc" and record["steps"] == 6
    assert outcome.run_dir.name == "fewshot-fashion_mnist_rot-conv4w16-method=protonet-ways=5-shots=1-bgn_num_groups=1-bs20-s0"
    accuracies = read_episode_accuracies(outcome.run_dir / EPISODE_FILE)
    assert len(accuracies) == record["test_episodes"] == 6
    assert all(a * 15 == pytest.approx(round(a * 15)) for a in accuracies)  # k of 5 ways x 3 queries right
    assert record["test/acc"] == pytest.approx(sum(accuracies) / 6, rel=1e-6)
    assert record["test/acc_ci95"] == pytest.approx(ci95(accuracies), rel=1e-6)
    assert len(record["test_episodes_sha256"]) == 64 and record["val_episodes_sha256"] != record["test_episodes_sha256"]


def test_every_norm_and_seed_is_tested_on_the_same_episodes(tmp_path: Path) -> None:
    a = execute(tiny(tmp_path, "--norm", "bn"), FEWSHOT)
    b = execute(tiny(tmp_path, "--norm", "gn:num_groups=2", "--seed", "1"), FEWSHOT)
    ra, rb = record_of(a.run_dir), record_of(b.run_dir)
    assert ra["test_episodes_sha256"] == rb["test_episodes_sha256"] and ra["val_episodes_sha256"] == rb["val_episodes_sha256"]
    # the "test" sets pair episode by episode (BN's file also holds its second mode, test/transductive)
    rows = [[r for r in (run.run_dir / EPISODE_FILE).read_text().splitlines() if r.startswith("test,")] for run in (a, b)]
    assert len(rows[0]) == 6 and [r.split(",")[1] for r in rows[0]] == [r.split(",")[1] for r in rows[1]]
    assert read_episode_accuracies(a.run_dir / EPISODE_FILE) != read_episode_accuracies(b.run_dir / EPISODE_FILE)
    # the reporter's few-shot table: a ways/shots column, mean ± the run's 95% CI over episodes
    assert run_cli("report", str(tmp_path), "--out", str(tmp_path / "report")) == 0
    table = (tmp_path / "report" / "tables" / "tables.md").read_text()
    # BN has batch statistics: both norm modes are evaluated, and shown side by side in one table
    assert "Mean ± 95% CI over test episodes" in table and "| Norm | running (configured) | transductive |" in table
    assert f"{100 * ra['test/acc']:.2f} ± {100 * ra['test/acc_ci95']:.2f}" in table.split("| BN |")[1].split("\n")[0]


def test_maml_normalizes_the_support_set_alone_and_tests_cross_domain(tmp_path: Path) -> None:
    outcome = execute(tiny(tmp_path, "--method", "maml", "--maml.first_order", "false", "--norm", "bn",
                           "--data.cross_domain", "digits"), FEWSHOT)
    assert outcome.status == "finished", outcome.message
    record = record_of(outcome.run_dir)
    assert record["batch_size"] == 5 and record["protocol"]["forward"] == "separate"
    assert record["protocol"]["norm_mode"] == "transductive" and "Finn et al." in record["protocol_source"]
    assert [d["name"] for d in record["metric_declarations"]] == ["test/acc", "test/running_acc", "test/digits_acc",
                                                                   "test/digits_running_acc"]
    assert 0 <= record["test/digits_acc"] <= 1 and record["test/digits_acc_ci95"] >= 0
    assert len(read_episode_accuracies(outcome.run_dir / EPISODE_FILE, "digits")) == 6
    joint = tiny(tmp_path, "--method", "maml", "--norm", "bn", "--forward", "joint")
    assert FEWSHOT.normalization_batch(joint) == 20 and FEWSHOT.protocol(joint)["forward"] == "joint"


def test_an_explicit_meta_batch_names_the_run(tmp_path: Path) -> None:
    default = tiny(tmp_path)
    explicit = dataclasses.replace(default, batch_size=7)
    assert FEWSHOT.coordinates(default) == {"method": "protonet", "ways": 5, "shots": 1}
    assert FEWSHOT.coordinates(explicit)["meta_batch"] == 7 and FEWSHOT.stages(explicit)[0].images_per_step == 7 * 20


# ----------------------------------------------------------------------------- resume


def _record_tasks(monkeypatch, seen: list[tuple[int, str]]) -> None:
    original = FewShotModule.training_step

    def step(self, batch, batch_idx):
        digest = hashlib.sha256(b"".join(images.numpy().tobytes() + labels.numpy().tobytes()
                                         for images, labels in batch)).hexdigest()
        seen.append((self.global_step, digest))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(FewShotModule, "training_step", step)


def test_resuming_from_an_epoch_end_draws_the_tasks_an_uninterrupted_run_draws(tmp_path: Path, monkeypatch) -> None:
    reference_tasks: list[tuple[int, str]] = []
    _record_tasks(monkeypatch, reference_tasks)
    reference = execute(tiny(tmp_path / "a"), FEWSHOT).record
    monkeypatch.undo()

    original = FewShotModule.training_step

    def interrupt(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(FewShotModule, "training_step", interrupt)
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful exit
        execute(tiny(tmp_path / "b"), FEWSHOT)
    monkeypatch.undo()
    run_dir = next((tmp_path / "b").iterdir())
    (run_dir / "checkpoints" / "interrupted.ckpt").unlink()  # resume from the epoch-end checkpoint

    resumed_tasks: list[tuple[int, str]] = []
    _record_tasks(monkeypatch, resumed_tasks)
    resumed = execute(tiny(tmp_path / "b"), FEWSHOT).record
    assert [s for s, _ in resumed_tasks] == [3, 4, 5]  # the second epoch only
    assert resumed_tasks == reference_tasks[3:]  # learn2learn's random draws continued where they stopped
    assert resumed["steps"] == reference["steps"] == 6
    assert resumed["test/acc"] == reference["test/acc"] and resumed["val/acc"] == reference["val/acc"]


# ----------------------------------------------------------------------------- refusals


def run_cli(*args: str) -> int:
    try:
        return cli_main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ways", "9"], "ways=9 is more than the 8 classes of fashion_mnist_rot's validation split"),
        (["--shots", "5", "--queries", "600"], "shots + queries = 5 + 600 is more than the 600 images"),
        (["--episodes.test_queries", "20", "--data.images_per_class", "20"], "shots + episodes.test_queries = 1 + 20"),
        (["--method", "reptile"], "method"),
        (["--maml.inner_lr", "0"], "maml.inner_lr=0.0 is not allowed: it must be a finite number > 0"),
        (["--anil.inner_lr", "-0.1"], "anil.inner_lr=-0.1 is not allowed"),
        (["--norm", "bn:track_running_stats=false"], "norm_mode=running evaluates with running statistics"),
        (["--data.name", "cifar_fs", "--data.cross_domain", "digits"], "data.cross_domain=digits needs 1x28x28"),
        (["--data.images_per_class", "7000"], "Fashion-MNIST's training file has 6000 images per class"),
        (["--norm", "bgn:num_groups=128"], "num_groups=128 does not divide"),
        (["--trainer.devices", "2", "--trainer.accelerator", "cpu"], "fewshot runs on one device"),
        (["--data.name", "cifar_fs", "--data.split", "base_6_2_2"],
         "data.split=base_6_2_2 names a split of fashion_mnist_rot; cifar_fs has one split"),
        (["--data.split", "base_5_1_4"], "data.split"),
    ],
)
def test_bad_configurations_are_refused_before_a_run_directory_exists(tmp_path: Path, capsys, args, message) -> None:
    code = run_cli("run", "fewshot", "--config", QUICK, "--out_dir", str(tmp_path), *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_missing_on_disk_data_is_refused_with_what_was_looked_for(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    for name, looked_for in [("mini_imagenet", "mini-imagenet-cache-train.pkl"), ("omniglot", "omniglot-py"),
                             ("cifar_fs", "cifar-100-python/train")]:
        code = run_cli("run", "fewshot", "--config", QUICK, "--out_dir", str(runs), "--data.name", name,
                       "--data.root", str(tmp_path), "--method", "maml")
        err = capsys.readouterr().err.strip()
        assert code == 2 and looked_for in err and str(tmp_path) in err and len(err.splitlines()) == 1
    assert not runs.exists()


def test_learn2learn_imports_without_gym_notice() -> None:
    assert "Gym has been unmaintained" in gym_notice()  # there is a notice to hide
    probe = "import tasks.fewshot.l2l, sys; sys.stderr.write('probe')"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "probe"
