"""Checks that flag an unreliable robust evaluation, in the spirit of RobustBench and AutoAttack's own flags.

They read the per-sample counts of one evaluation (every attack on the same
fixed subset) and return the reasons to distrust it; the record carries them as
``eval_warning``. A tolerance of one sample absorbs random starts; the
gradient-masking check uses AutoAttack's own threshold (0.2% of the subset).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvalCounts", "eval_warnings", "CONVERGENCE_DROP", "MASKING_FRACTION"]

CONVERGENCE_DROP = 0.01  # PGD with 10x the steps may lower accuracy by at most one point
MASKING_FRACTION = 0.002  # AutoAttack's check_square_sr: Square may add at most 0.2% of the subset
SAMPLE_TOLERANCE = 1


@dataclass(frozen=True)
class EvalCounts:
    """Images classified correctly under each attack, out of ``samples`` (one fixed subset).

    FGSM and PGD attack every image (their counts can exceed the clean one, which is
    what the first check looks for); the ensemble attacks the clean-correct images,
    as AutoAttack does, so its count is the per-sample worst case over clean and its attacks.

    Attributes:
        samples: images of the subset.
        clean: clean-correct images.
        fgsm: robust to FGSM.
        pgd: robust to the test PGD (PGD-20).
        pgd_long: robust to both the test PGD and PGD with 10x its steps; None when not run.
        ensemble: robust to every ensemble attack; None without an ensemble.
        square_only: images Square broke that every gradient attack (FGSM, PGD, ensemble) left robust;
            None when Square did not run.
        pgd_name: how the test PGD is named in the reasons (``PGD-20``).
        ensemble_name: how the ensemble is named in the reasons.
    """

    samples: int
    clean: int
    fgsm: int
    pgd: int
    pgd_long: int | None = None
    ensemble: int | None = None
    square_only: int | None = None
    pgd_name: str = "PGD-20"
    ensemble_name: str = "the ensemble"


def _pct(count: int, samples: int) -> str:
    return f"{100.0 * count / max(1, samples):.1f}%"


def eval_warnings(c: EvalCounts) -> list[str]:
    """Reasons to distrust the evaluation (empty when every check passes)."""
    reasons: list[str] = []
    n = c.samples
    if c.pgd > c.clean + SAMPLE_TOLERANCE:
        reasons.append(f"{c.pgd_name} accuracy {_pct(c.pgd, n)} is above clean accuracy {_pct(c.clean, n)} "
                       f"on the same {n} images")
    if c.ensemble is not None and c.ensemble > c.pgd + SAMPLE_TOLERANCE:
        reasons.append(f"{c.ensemble_name} accuracy {_pct(c.ensemble, n)} is above {c.pgd_name} accuracy "
                       f"{_pct(c.pgd, n)} on the same {n} images")
    if c.fgsm + SAMPLE_TOLERANCE < c.pgd:
        reasons.append(f"FGSM is stronger than {c.pgd_name} ({_pct(c.fgsm, n)} vs {_pct(c.pgd, n)}): "
                       "the iterative attack is not working")
    if c.pgd_long is not None and (c.pgd - c.pgd_long) / max(1, n) > CONVERGENCE_DROP:
        reasons.append(f"PGD with 10x the steps lowers accuracy from {_pct(c.pgd, n)} to {_pct(c.pgd_long, n)}: "
                       f"{c.pgd_name} had not converged")
    if c.square_only is not None and c.square_only > max(SAMPLE_TOLERANCE, MASKING_FRACTION * n):
        reasons.append(f"Square (gradient-free) broke {c.square_only} of {n} images that every gradient attack "
                       "left robust: a sign of gradient masking")
    return reasons
