"""End-to-end NAS runs through the real runner: records, both stages, resume inside each stage, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tasks.cli import main as cli_main
from tasks.nas.draw import draw_runs
from tasks.nas.genotypes import PUBLISHED, parse_genotype
from tasks.nas.network import EvalNetwork
from tasks.nas.retrain_module import RetrainModule
from tasks.nas.search_module import SEARCH_LOG, SearchModule
from tasks.nas.task import NAS
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "nas" / "quick.yaml")
QUICK_FIXED = str(REPO / "configs" / "nas" / "quick_fixed.yaml")


def config(tmp_path: Path, *args: str, base: str = QUICK):
    """The quick config made tiny by ``NAS.shrink`` (3 search and 12 retrain batches of 4 per epoch)."""
    cfg = parse_config(NAS, ["--config", base, "--out_dir", str(tmp_path), *args], raise_errors=True)
    return NAS.shrink(cfg)


def record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def search_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "search" / "last.ckpt", weights_only=True)


def interrupt(tmp_path: Path, monkeypatch, module_class, when, *args: str) -> Path:
    """Run until ``when(module)`` holds at a training step of ``module_class``, then Ctrl-C; the run directory."""
    original = module_class.training_step

    def step(self, batch, batch_idx):
        if when(self):
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(module_class, "training_step", step)
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful exit(1)
        execute(config(tmp_path, *args), NAS)
    monkeypatch.setattr(module_class, "training_step", original)
    return next(tmp_path.iterdir())


@pytest.fixture(scope="module")
def first_order_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("first")
    outcome = execute(config(tmp), NAS)
    assert outcome.status == "finished", outcome.message
    return outcome.run_dir


def test_search_then_retrain_writes_one_complete_record(first_order_run: Path) -> None:
    record = record_of(first_order_run)
    assert first_order_run.name == "nas-fashion_mnist-darts-order=first-bn-bs4-s0"
    assert record["status"] == "finished" and record["stages"] == ["search", "retrain"]
    assert record["coordinates"] == {"order": "first"} and record["model"] == "darts"
    assert record["batch_size"] == record["search_batch_size"] == record["retrain_batch_size"] == 4
    assert record["axis_value"] == 4 and record["protocol"] == {
        "supernet_affine": False, "retrain_batch": "search batch", "retrain_norm": "norm under test",
        "arch_warmup": 0.25, "arch_lr_scaling": "budget", "arch_updates": "one per batch"}
    assert record["supernet_norm"] == "bn:affine=false" and record["network_norm"] == "bn"
    assert record["norm_under_test_in"] == "search and final network"
    # 6 batches: the first int(0.25 * 6) = 1 trains the weights only, then 5 alpha updates at 3e-4 x 19,550 / 5
    assert record["search/arch_warmup_batches"] == 1 and record["search/arch_updates"] == 5
    assert record["search/arch_lr"] == pytest.approx(3e-4 * 19550 / 5)
    assert record["search/alpha_entropy_norm_drop"] == pytest.approx(
        record["search/alpha_entropy_norm_start"] - record["search/alpha_entropy_norm_end"], abs=1e-7)
    assert record["search/alpha_entropy_norm_start"] > 0.9999 and isinstance(record["search/genotype_changed"], bool)
    assert [d["name"] for d in record["metric_declarations"]] == [
        "test/acc", "search/val_acc", "num_skip_connects", "search/alpha_entropy", "search/wall_time_s",
        "retrain/params_m", "retrain/wall_time_s"]
    # 48 training images: the search gets 24 (two halves of 12: 3 batches of 4), the retrain all 48 (12 batches)
    assert record["search/steps"] == 6 and record["retrain/steps"] == 12 == record["steps"]
    assert 0 <= record["test/acc"] <= 1 and 0 <= record["search/val_acc"] <= 1 and 0 <= record["val/acc"] <= 1
    assert record["search/wall_time_s"] > 0 and record["retrain/wall_time_s"] > 0
    genotype = parse_genotype(record["genotype"])
    assert record["num_skip_connects"] == genotype.num_skip_connects() == record["search/num_skip_connects"]
    assert record["num_skip_connects_reduce"] == genotype.num_skip_connects("reduce")
    assert 0 < record["search/alpha_entropy"] <= 2.0795  # log 8: alpha starts near uniform
    network = EvalNetwork(genotype, 4, 10, 3, "bn", 1)
    assert record["retrain/params_m"] == round(network.num_parameters() / 1e6, 6)
    assert (first_order_run / "genotype.png").read_bytes()[:4] == b"\x89PNG" and record["genotype_figure"] == "genotype.png"
    # the retrain trained the searched cell
    retrain = torch.load(first_order_run / "checkpoints" / "retrain" / "last.ckpt", weights_only=True)
    assert retrain["hyper_parameters"]["genotype"] == record["genotype"]
    rows = list(csv.DictReader(open(first_order_run / "metrics-search.csv")))
    assert [int(r["step"]) for r in rows if r.get("search/train_loss")] == [0, 2, 4]


def test_the_cells_of_a_sweep_folder_are_drawn_one_row_per_run(first_order_run: Path, tmp_path: Path) -> None:
    out = draw_runs(first_order_run.parent, tmp_path / "cells.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError, match="no finished NAS run records"):
        draw_runs(tmp_path, tmp_path / "none.png")


def test_search_logs_genotype_alpha_and_skips_after_every_epoch(first_order_run: Path) -> None:
    entries = [json.loads(line) for line in (first_order_run / SEARCH_LOG).read_text().splitlines()]
    record = record_of(first_order_run)
    assert [e["epoch"] for e in entries] == [0, 1] and [e["batches"] for e in entries] == [3, 6]
    for entry in entries:
        for cell in ("normal", "reduce"):
            weights = torch.tensor(entry[f"softmax_alpha_{cell}"])
            assert weights.shape == (14, 8) and torch.allclose(weights.sum(1), torch.ones(14), atol=1e-4)
        genotype = parse_genotype(entry["genotype"])
        assert entry["num_skip_connects"] == genotype.num_skip_connects()
    assert entries[-1]["genotype"] == record["genotype"] and entries[-1]["val_acc"] == record["search/val_acc"]


def test_search_steps_split_the_optimizers_and_schedule_per_batch(first_order_run: Path) -> None:
    state = search_checkpoint(first_order_run)
    assert state["global_step"] == 12  # Lightning counts both optimizer steps of each of the 6 batches
    sgd, adam = state["optimizer_states"]
    weights = SearchModule(**{k: v for k, v in state["hyper_parameters"].items()}).net.weight_parameters()
    assert len(sgd["param_groups"][0]["params"]) == len(weights) and len(adam["param_groups"][0]["params"]) == 2
    # the quick profile's alpha: 1 warm-up batch of 6, then 5 Adam steps at 3e-4 x 19,550 / 5 (budget scaling)
    assert adam["param_groups"][0]["betas"] == (0.5, 0.999)
    assert adam["param_groups"][0]["lr"] == pytest.approx(3e-4 * 19550 / 5)
    assert {int(s["step"]) for s in adam["state"].values()} == {5}
    schedule = state["lr_schedulers"][0]
    assert schedule["T_max"] == 6 and schedule["last_epoch"] == 6  # the cosine runs over batches, not steps
    assert sgd["param_groups"][0]["lr"] == pytest.approx(schedule["eta_min"])
    # running statistics move once per batch: the weight step's forward only
    assert {int(v) for k, v in state["state_dict"].items() if k.endswith("num_batches_tracked")} == {6}
    alphas = state["state_dict"]["net.alphas_normal"]
    assert alphas.shape == (14, 8) and alphas.abs().max() > 0


def test_second_order_search_with_a_step_budget(tmp_path: Path) -> None:
    # 4 batches: epoch 0 (3 batches) and 1 batch of epoch 1, which still ends with a validation
    outcome = execute(config(tmp_path, "--nas.order", "second", "--norm", "bgn:num_groups=4",
                             "--search.max_steps", "4"), NAS)
    assert outcome.status == "finished", outcome.message
    record = outcome.record
    assert outcome.run_dir.name == "nas-fashion_mnist-darts-order=second-bgn_num_groups=4-bs4-s0"
    assert record["search/steps"] == 4 and record["search_order"] == "second"
    entries = [json.loads(line) for line in (outcome.run_dir / SEARCH_LOG).read_text().splitlines()]
    assert [e["batches"] for e in entries] == [3, 4]
    state = search_checkpoint(outcome.run_dir)
    assert state["lr_schedulers"][0]["T_max"] == 4 == state["lr_schedulers"][0]["last_epoch"]
    stats = [int(v) for k, v in state["state_dict"].items() if k.endswith("num_batches_tracked")]
    assert stats and set(stats) == {4}  # the unrolled step's five extra forwards updated no BGN statistic


def test_fixed_genotype_retrains_the_published_cell_only(tmp_path: Path) -> None:
    outcome = execute(config(tmp_path, base=QUICK_FIXED), NAS)
    assert outcome.status == "finished", outcome.message
    record = outcome.record
    assert outcome.run_dir.name == "nas-fashion_mnist-darts-genotype=DARTS_V2-bn-bs4-s0"
    assert "stages" not in record and "search/val_acc" not in record and record["supernet_norm"] is None
    assert record["genotype"] == str(PUBLISHED["DARTS_V2"]) and record["genotype_name"] == "DARTS_V2"
    assert record["num_skip_connects"] == 2 and record["retrain/wall_time_s"] > 0
    assert [d["name"] for d in record["metric_declarations"]] == ["test/acc", "retrain/params_m", "retrain/wall_time_s"]
    assert record["retrain/params_m"] == round(EvalNetwork(PUBLISHED["DARTS_V2"], 4, 10, 3, "bn", 1).num_parameters() / 1e6, 6)
    checkpoint = torch.load(outcome.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["genotype"] == str(PUBLISHED["DARTS_V2"])
    assert (outcome.run_dir / "genotype.png").is_file()


def test_grid_coordinates_name_the_order_or_the_fixed_cell(tmp_path: Path) -> None:
    custom = str(PUBLISHED["DARTS_V2"]).replace("('dil_conv_3x3', 2)", "('sep_conv_5x5', 2)")
    assert NAS.coordinates(config(tmp_path, "--nas.order", "second")) == {"order": "second"}
    assert NAS.coordinates(config(tmp_path, "--nas.genotype", "DARTS_V1")) == {"genotype": "DARTS_V1"}
    named = NAS.coordinates(config(tmp_path, "--nas.genotype", custom))["genotype"]
    assert named.startswith("custom-") and len(named) == len("custom-") + 8
    assert NAS.coordinates(config(tmp_path, "--nas.genotype", custom.replace(", ", ",  "))) == {"genotype": named}
    fixed = parse_config(NAS, ["--config", QUICK, "--nas.genotype", "DARTS_V2", "--retrain.batch_size", "6"],
                         raise_errors=True)
    assert [s.name for s in NAS.stages(fixed)] == ["retrain"] and NAS.normalization_batch(fixed) == 6
    paper = parse_config(NAS, ["--config", str(REPO / "configs/nas/paper_cifar10.yaml")], raise_errors=True)
    stages = NAS.stages(paper)
    assert [(s.name, s.epochs, s.images_per_step, s.optimizer_steps_per_batch, s.test) for s in stages] == [
        ("search", 50, 128, 2, False), ("retrain", 600, 96, 1, True)]
    assert NAS.normalization_batch(paper) == 64 and NAS.protocol(paper)["retrain_batch"] == 96


def test_resume_inside_the_search_continues_and_matches_the_uninterrupted_run(tmp_path: Path, monkeypatch,
                                                                               first_order_run: Path) -> None:
    run_dir = interrupt(tmp_path, monkeypatch, SearchModule, lambda m: m.global_step == 8)  # batch 5 of 6
    assert not (run_dir / "result.json").exists() and not (run_dir / "stages" / "search.json").exists()
    assert torch.load(run_dir / "checkpoints" / "search" / "interrupted.ckpt", weights_only=True)["global_step"] == 8
    original, seen = SearchModule.training_step, []

    def record_steps(self, batch, batch_idx):
        seen.append(self.global_step)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SearchModule, "training_step", record_steps)
    outcome = execute(config(tmp_path), NAS)
    assert outcome.status == "finished" and seen == [8, 10]  # the last two batches, not a restart
    assert outcome.record["search/steps"] == 6
    entries = [json.loads(line) for line in (run_dir / SEARCH_LOG).read_text().splitlines()]
    assert [e["epoch"] for e in entries] == [0, 1]
    # resumed from the epoch-end checkpoint, the search reproduces the uninterrupted run's alphas exactly
    reference = search_checkpoint(first_order_run)["state_dict"]["net.alphas_normal"]
    other = tmp_path / "again"
    epoch_end = interrupt(other, monkeypatch, SearchModule, lambda m: m.current_epoch == 1)
    (epoch_end / "checkpoints" / "search" / "interrupted.ckpt").unlink()
    assert execute(config(other), NAS).status == "finished"
    assert torch.equal(search_checkpoint(epoch_end)["state_dict"]["net.alphas_normal"], reference)
    assert record_of(epoch_end)["genotype"] == record_of(first_order_run)["genotype"]


def test_resume_inside_the_retrain_keeps_the_finished_search(tmp_path: Path, monkeypatch) -> None:
    run_dir = interrupt(tmp_path, monkeypatch, RetrainModule, lambda m: m.global_step == 7)
    searched = json.loads((run_dir / "stages" / "search.json").read_text())
    assert searched["steps"] == 6 and "genotype" in searched["outputs"]
    assert torch.load(run_dir / "checkpoints" / "retrain" / "interrupted.ckpt", weights_only=True)["global_step"] == 7

    def no_search(self, batch, batch_idx):
        raise AssertionError("the finished search ran again")

    original, seen = RetrainModule.training_step, []

    def record_steps(self, batch, batch_idx):
        seen.append(self.global_step)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SearchModule, "training_step", no_search)
    monkeypatch.setattr(RetrainModule, "training_step", record_steps)
    outcome = execute(config(tmp_path), NAS)
    assert outcome.status == "finished" and seen[0] == 7 and outcome.record["retrain/steps"] == 12
    assert outcome.record["genotype"] == searched["outputs"]["genotype"]


def run_cli(*args: str) -> int:
    try:
        return cli_main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize("args, message", [
    (["--nas.genotype", "DARTS_V3"], "nas.genotype: unknown genotype 'DARTS_V3' (did you mean 'DARTS_V2'?)"),
    (["--nas.genotype", str(PUBLISHED["DARTS_V2"]).replace("dil_conv_3x3", "conv_3x3")], "unknown op 'conv_3x3'"),
    (["--search.layers", "2"], "search.layers=2 is not allowed: it must be an integer >= 3"),
    (["--retrain.layers", "1"], "retrain.layers=1 is not allowed"),
    (["--norm", "bgn:num_groups=7"], "DARTS supernet (3 cells, C=4, ops with bgn:affine=false,num_groups=7) on "
                                     "1x32x32 fashion_mnist inputs: bgn: num_groups=7 does not divide"),
    (["--norm", "bgn:num_groups=512"], "DARTS network (5 cells, C=8) on 1x32x32 fashion_mnist inputs: bgn: "
                                       "num_groups=512 does not divide C*H*W = 768*1*1"),
    (["--search.channels", "5"], "search.channels=5 must be even"),
    (["--data.pad_to", "30"], "30x30 inputs cannot pass the two reduction cells"),
    (["--data.pad_to", "0"], "DARTS' auxiliary head needs 8x8 maps"),
    (["--data.name", "imagenet"], "data.name: 'imagenet' is not a data set the NAS task can use"),
    (["--trainer.devices", "2"], "the DARTS search runs on one device"),
    (["--nas.order", "third"], "nas.order"),
    (["--search.arch_update_batch", "24"], "search.arch_update_batch=24 is not a multiple of the search batch 16"),
    (["--search.arch_warmup", "1"], "search.arch_warmup=1"),
    (["--retrain.norm", "bn", "--nas.genotype", "DARTS_V2"], "retrain.norm='bn' with nas.genotype='DARTS_V2'"),
    (["--retrain.norm", "bgn:num_groups=512"], "DARTS network (5 cells, C=8, retrain.norm bgn:num_groups=512) on "
                                               "1x32x32 fashion_mnist inputs: bgn: num_groups=512 does not divide"),
    (["--retrain.norm", "batchnorm"], "retrain.norm: "),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path, capsys, args, message) -> None:
    code = run_cli("run", "nas", "--config", QUICK, "--out_dir", str(tmp_path), *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
