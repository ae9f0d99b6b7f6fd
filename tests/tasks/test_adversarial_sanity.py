"""The unreliable-evaluation flags: each check fires on its own failure, and only then."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tasks.adversarial.ensemble import EnsembleSettings
from tasks.adversarial.evaluation import summarize
from tasks.adversarial.sanity import EvalCounts, eval_warnings

SOUND = EvalCounts(samples=1000, clean=900, fgsm=600, pgd=500, pgd_long=495, ensemble=470, square_only=1)


def test_a_sound_evaluation_is_not_flagged() -> None:
    assert eval_warnings(SOUND) == []
    assert eval_warnings(EvalCounts(samples=100, clean=80, fgsm=30, pgd=20)) == []  # without the optional attacks


@pytest.mark.parametrize(
    "change, words",
    [
        ({"pgd": 902, "pgd_long": 900, "fgsm": 905}, "PGD-20 accuracy 90.2% is above clean accuracy 90.0%"),
        ({"ensemble": 502}, "the ensemble accuracy 50.2% is above PGD-20 accuracy 50.0%"),
        ({"fgsm": 498}, "FGSM is stronger than PGD-20 (49.8% vs 50.0%)"),
        ({"pgd_long": 489}, "PGD with 10x the steps lowers accuracy from 50.0% to 48.9%"),
        ({"square_only": 3}, "Square (gradient-free) broke 3 of 1000 images"),
    ],
)
def test_each_check_fires_on_its_own_failure(change: dict, words: str) -> None:
    reasons = eval_warnings(dataclasses.replace(SOUND, **change))
    assert len(reasons) == 1 and words in reasons[0], reasons


@pytest.mark.parametrize("change", [{"pgd": 901, "pgd_long": 900, "fgsm": 905}, {"ensemble": 501}, {"fgsm": 499},
                                    {"pgd_long": 490}, {"square_only": 2}])
def test_one_sample_and_the_autoattack_threshold_are_tolerated(change: dict) -> None:
    assert eval_warnings(dataclasses.replace(SOUND, **change)) == []


def test_the_summary_counts_each_image_once_and_names_the_attack() -> None:
    b = lambda bits: torch.tensor([c == "1" for c in bits])  # noqa: E731
    outcomes = {"clean": b("11111110"), "fgsm": b("11110000"), "pgd": b("11100000"), "pgd_long": b("11100000"),
                "ensemble": b("10000000"), "broken:apgd-ce": b("01000000"), "broken:square": b("00100000")}
    settings = EnsembleSettings(attacks=("apgd-ce", "square"))
    summary = summarize(outcomes, settings)
    assert summary.samples == 8 and summary.robust_attack == "apgd-ce+square"
    assert summary.metrics["test/robust_acc"] == 1 / 8 and summary.metrics["test/pgd20_acc"] == 3 / 8
    assert summary.metrics["test/subset_acc"] == 7 / 8 and summary.metrics["test/fgsm_acc"] == 4 / 8
    assert summary.counts["square_only"] == 1  # image 2: FGSM, PGD-20 and PGD-200 left it robust
    assert summary.warnings == []  # one image is within the one-sample tolerance
    outcomes["broken:square"] = b("00110000")  # image 3 fell to PGD-20 already: not Square's alone
    assert summarize(outcomes, settings).counts["square_only"] == 1
    without_ensemble = {k: v for k, v in outcomes.items() if k in ("clean", "fgsm", "pgd")}
    plain = summarize(without_ensemble, settings)
    assert plain.robust_attack == "pgd-20" and plain.metrics["test/robust_acc"] == 3 / 8
    assert summary.report()["eval_warning"] is None
