"""End-to-end domain-adaptation runs on Fashion-MNIST -> Fashion-MNIST-M (shrunk): records, selection, resume, refusals.

The DANN run of the quick config, shrunk, is trained once per module and
compared against: the same run with the target labels scrambled (selection and
training must not change at all), and the same run interrupted and resumed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tasks.cli import main as cli_main
from tasks.runner.parse import parse_config
from tasks.runner.run import execute
from tasks.uda import loading
from tasks.uda.adversarial import annealed_lr_factor, grl_coefficient
from tasks.uda.module import UdaModule
from tasks.uda.task import UDA

pytestmark = pytest.mark.usefixtures("no_data_root")  # tests/tasks/conftest.py, with fm_cache
REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "uda" / "quick.yaml")
PAIR = ("uda-fmnist_fmnistm-lenet-method={method}-source=fashion_mnist-target=fashion_mnist_m-per_domain_batch_size=8-"
        "{norm}-bs{batch}-s0")
LR = 0.01 * 8 / 32  # quick's lr at its base batch of 32 per domain, scaled linearly to the shrunk 8
STEPS = 44  # 0.3% of the 59,952 Fashion-MNIST training images left after validation: 180 -> 22 batches of 8, 2 epochs



def config(out: Path, cache: Path, *args: str):
    cfg = parse_config(UDA, ["--config", QUICK, "--out_dir", str(out), "--data.cache_dir", str(cache), *args],
                       raise_errors=True)
    return UDA.shrink(cfg)


def run(out: Path, cache: Path, *args: str) -> dict:
    outcome = execute(config(out, cache, *args), UDA)
    assert outcome.status == "finished", outcome.message
    return outcome.record


def weights(run_dir: Path, name: str) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def dann(tmp_path_factory, fm_cache) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("dann")
    record = run(out, fm_cache, "--method", "dann")
    return record, out / record["run_id"]


def test_dann_record_carries_the_pair_axis_the_protocol_and_source_selection(dann) -> None:
    record, run_dir = dann
    assert record["run_id"] == PAIR.format(method="dann", norm="bn", batch=16)  # a joint pass normalizes 2 x 8
    assert (record["dataset"], record["model"], record["batch_size"]) == ("fmnist_fmnistm", "lenet", 16)
    assert record["per_domain_batch_size"] == 8 and record["lr_effective"] == pytest.approx(LR)
    assert record["coordinates"] == {"method": "dann", "source": "fashion_mnist", "target": "fashion_mnist_m",
                                     "per_domain_batch_size": 8}
    assert record["table_axis"] == {"key": "pair", "label": "source -> target", "coordinates": ["source", "target"],
                                    "batch_size_follows": False}
    assert (record["axis_value"], record["axis_label"], record["axis_average"]) == (
        "fashion_mnist->fashion_mnist_m", "F-MNIST→F-MNIST-M", True)
    assert record["protocol"] == {"domain_batches": "joint", "lr_scaling": "linear"} and record["images_per_step"] == 16
    assert record["selection"] == {"rule": "best source validation accuracy", "monitor": "val/source_acc", "mode": "max"}
    assert record["primary_metric"] == "test/target_acc"
    assert record["report_metrics"] == ["test/target_acc", "test/source_acc", "test/target_acc_adabn"]
    assert record["steps"] == STEPS and record["selected_epoch"] in (0, 1)
    for key in ("test/target_acc", "test/source_acc", "last/test/target_acc", "last/test/source_acc", "val/source_acc"):
        assert 0.0 <= record[key] <= 1.0
    assert record["val/source_acc"] >= record["last/val/source_acc"]
    assert not any("target" in k and k.startswith("val/") for k in record)  # no target validation at all
    assert len(record["fashion_mnist_m_test_sha256"]) == 64 and record["adabn"].startswith("running statistics of 2")
    assert 0 <= record["test/target_acc_adabn"] <= 1 and 0 <= record["last/test/target_acc_adabn"] <= 1
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    logged = [(int(r["step"]), float(r["train/grl_coefficient"]), float(r["train/lr"])) for r in rows
              if r.get("train/grl_coefficient")]
    assert [s for s, _, _ in logged] == list(range(0, STEPS, 5))
    for step, coefficient, lr in logged:  # the ramp and the annealing read p = step / total steps
        assert coefficient == pytest.approx(grl_coefficient(step / STEPS), abs=1e-6)
        assert lr == pytest.approx(LR * annealed_lr_factor(step / STEPS), rel=1e-6)
    assert all(0 <= float(r["train/domain_acc"]) <= 1 for r in rows if r.get("train/domain_acc"))
    assert (run_dir / "domains.png").is_file()


def test_selection_and_training_never_read_target_labels(dann, tmp_path: Path, fm_cache: Path, monkeypatch) -> None:
    """Scramble every target label (training and test split): everything but the target test accuracy is identical."""
    reference, reference_dir = dann
    original = loading.load_tensor_split

    def scrambled(domain, *args, **kwargs):
        images, labels, provenance = original(domain, *args, **kwargs)
        if domain.name == "fashion_mnist_m":
            labels = (labels + 1 + torch.arange(len(labels)) % 9) % 10  # every label wrong
        return images, labels, provenance

    monkeypatch.setattr(loading, "load_tensor_split", scrambled)
    hidden = run(tmp_path, fm_cache, "--method", "dann")
    hidden_dir = tmp_path / hidden["run_id"]
    assert hidden["selected_epoch"] == reference["selected_epoch"]
    for key in ("val/source_acc", "val/source_loss", "last/val/source_acc", "test/source_acc", "last/test/source_acc"):
        assert hidden[key] == reference[key], key
    for name in ("best.ckpt", "last.ckpt"):  # the very same weights were trained and selected
        a, b = weights(reference_dir, name), weights(hidden_dir, name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert hidden["test/target_acc"] != reference["test/target_acc"]  # the target labels really were replaced


def test_source_only_reports_adabn_where_the_norm_keeps_running_statistics(tmp_path: Path, fm_cache: Path) -> None:
    bn = run(tmp_path, fm_cache, "--norm", "bn")
    assert bn["images_per_step"] == 8 and bn["coordinates"]["method"] == "source_only"
    assert bn["report_metrics"] == ["test/target_acc", "test/source_acc", "test/target_acc_adabn"]
    assert 0 <= bn["test/target_acc_adabn"] <= 1 and 0 <= bn["last/test/target_acc_adabn"] <= 1
    assert bn["adabn"] == ("running statistics of 2 norm modules re-estimated on 128 target training images "  # 2 x 64 of 180
                           "(cumulative average, batches of 64)")
    assert bn["test/target_acc_adabn"] != bn["test/target_acc"] or bn["last/test/target_acc_adabn"] != bn["last/test/target_acc"]
    ln = run(tmp_path, fm_cache, "--norm", "ln")
    assert "test/target_acc_adabn" not in ln and "last/test/target_acc_adabn" not in ln
    assert ln["adabn"].startswith("does not apply: LN keeps no running statistics")


def test_cdan_with_entropy_conditioning_and_separate_domain_batches(tmp_path: Path, fm_cache: Path) -> None:
    record = run(tmp_path, fm_cache, "--method", "cdan", "--cdan.entropy_conditioning", "true",
                 "--domain_batches", "separate", "--norm", "bgn:num_groups=4", "--trainer.epochs", "1")
    assert record["protocol"] == {"domain_batches": "separate", "lr_scaling": "linear"}
    assert record["coordinates"]["method"] == "cdan" and record["batch_size"] == 8  # one domain per normalizing pass
    assert record["steps"] == 22 and 0 <= record["test/target_acc"] <= 1
    assert 0 <= record["test/target_acc_adabn"] <= 1  # BGN keeps running statistics: AdaBN after CDAN too


def test_oracle_trains_and_selects_on_labelled_target_data(tmp_path: Path, fm_cache: Path) -> None:
    record = run(tmp_path, fm_cache, "--method", "oracle", "--trainer.epochs", "1")
    assert record["selection"]["monitor"] == "val/target_acc" and "val/source_acc" not in record
    assert 0 <= record["test/target_acc"] <= 1 and record["steps"] == 22
    assert record["val/target_acc"] >= record["last/val/target_acc"]


def test_interrupted_dann_run_resumes_and_an_epoch_end_resume_reproduces_it(dann, tmp_path: Path, fm_cache: Path,
                                                                             monkeypatch) -> None:
    reference, _ = dann
    original = UdaModule.training_step

    def interrupt_at(step: int):
        def training_step(self, batch, batch_idx):
            if self.global_step == step:
                raise KeyboardInterrupt
            return original(self, batch, batch_idx)
        return training_step

    for out, step in ((tmp_path / "mid", 30), (tmp_path / "end", 22)):
        monkeypatch.setattr(UdaModule, "training_step", interrupt_at(step))
        with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful exit(1)
            execute(config(out, fm_cache, "--method", "dann"), UDA)
        run_dir = out / reference["run_id"]
        assert not (run_dir / "result.json").exists()
        if step == 22:  # resume from the epoch-end checkpoint only
            (run_dir / "checkpoints" / "interrupted.ckpt").unlink()
        seen: list[int] = []

        def record_steps(self, batch, batch_idx):
            seen.append(self.global_step)
            return original(self, batch, batch_idx)

        monkeypatch.setattr(UdaModule, "training_step", record_steps)
        resumed = execute(config(out, fm_cache, "--method", "dann"), UDA).record
        assert seen[0] == step and resumed["steps"] == STEPS
        if step == 22:
            for key in ("test/target_acc", "val/source_acc", "val/source_loss", "last/test/target_acc"):
                assert resumed[key] == pytest.approx(reference[key], rel=1e-6), key


@pytest.mark.parametrize("args, message", [
    (["--method", "mmd"], "method"),
    (["--data.target", "mnistm"], "data.target: unknown domain 'mnistm' (did you mean 'mnist_m'?)"),
    (["--data.target", "mnist"], "data.source=fashion_mnist and data.target=mnist have different label spaces"),
    (["--data.target", "fashion_mnist"], "both 'fashion_mnist'"),
    (["--trade_off", "-0.5"], "trade_off=-0.5 is not allowed: it must be a finite number >= 0"),
    (["--norm", "bn:track_running_stats=false"], "adabn=true with norm bn:track_running_stats=false"),
    (["--data.source", "amazon", "--data.target", "webcam", "--method", "oracle"], "method=oracle with target webcam"),
    (["--norm", "bgn:num_groups=5"], "num_groups=5 does not divide"),
    (["--data.source", "mnist", "--data.target", "usps"], "mnist (train split) not found: looked in"),
    (["--domain_batches", "mixed"], "domain_batches"),
    (["--model.weights", "/nonexistent/resnet50.pth"], "model.weights is for resnet50"),
    (["--model.name", "resnet50", "--model.weights", "/nonexistent/r50.pth"], "model.weights=/nonexistent/r50.pth: no such file"),
])
def test_bad_input_is_refused_with_exit_2_and_no_run_directory(tmp_path: Path, capsys, args, message) -> None:
    root = tmp_path / "data"
    root.mkdir()
    out = tmp_path / "runs"
    code = _cli("run", "uda", "--config", QUICK, "--out_dir", str(out), "--data.root", str(root), *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def _cli(*args: str) -> int:
    try:
        return cli_main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def test_adabn_off_accepts_a_norm_without_running_statistics_tracking(tmp_path: Path) -> None:
    from tasks.runner.prepare import prepare

    cfg = parse_config(UDA, ["--config", QUICK, "--norm", "bn:track_running_stats=false", "--adabn", "false"],
                       raise_errors=True)
    assert prepare(cfg, UDA).norm == "bn:track_running_stats=false"
