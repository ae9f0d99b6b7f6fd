"""torchattacks' attacks as normbench uses them: built after the model moved, run with our layer modes.

Every attack here is a torchattacks attack (normbench writes no PGD of its
own). :func:`generate` runs one through ``Attack.forward`` so that torchattacks
never switches layer modes (:mod:`.layer_mode` does, from registry metadata),
with gradients on (Lightning's evaluation loops run under ``no_grad``), and,
for evaluation, in fp32 with a fixed seed in a forked random state, so an
evaluation attack neither depends on nor disturbs the training's random stream.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch
import torchattacks
from torch import nn

from .config import AdversarialConfig, FGSMRSConfig, PGDTrainingConfig, TradesConfig
from .layer_mode import AttackMode, attack_layer_mode

__all__ = ["training_attack", "training_attack_name", "fgsm", "pgd", "generate", "seeded", "within_threat_model"]


def training_attack(cfg: AdversarialConfig, model: nn.Module) -> torchattacks.attack.Attack:
    """The inner maximization of ``cfg.method`` on ``model`` (call after the model is on its device)."""
    settings = cfg.method_config
    if cfg.method == "pgd_at":
        assert isinstance(settings, PGDTrainingConfig)
        return torchattacks.PGD(model, eps=settings.epsilon, alpha=settings.step_size, steps=settings.steps,
                                random_start=True)
    if cfg.method == "trades":
        assert isinstance(settings, TradesConfig)
        return torchattacks.TPGD(model, eps=settings.epsilon, alpha=settings.step_size, steps=settings.steps)
    if cfg.method == "fgsm_rs":
        assert isinstance(settings, FGSMRSConfig)
        return torchattacks.FFGSM(model, eps=settings.epsilon, alpha=settings.step)
    raise ValueError(f"method={cfg.method!r}; choose pgd_at, trades or fgsm_rs")


def training_attack_name(cfg: AdversarialConfig) -> str:
    """The training attack in words, for the record (``pgd-7 step 0.025``)."""
    s = cfg.method_config
    if isinstance(s, PGDTrainingConfig):
        return f"pgd-{s.steps} step {s.step_size:g}"
    if isinstance(s, TradesConfig):
        return f"tpgd-{s.steps} step {s.step_size:g} beta {s.beta:g}"
    return f"fgsm-rs step {s.step:g}"


def fgsm(model: nn.Module, epsilon: float) -> torchattacks.attack.Attack:
    """FGSM (Goodfellow et al., 2015): one signed-gradient step of size epsilon, no random start."""
    return torchattacks.FGSM(model, eps=epsilon)


def pgd(model: nn.Module, epsilon: float, steps: int) -> torchattacks.attack.Attack:
    """Evaluation PGD: step epsilon/4 and a uniform random start (PGD-10 for selection, PGD-20 for test)."""
    return torchattacks.PGD(model, eps=epsilon, alpha=epsilon / 4, steps=steps, random_start=True)


@contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run the block with torch's generators seeded to ``seed`` and restored afterwards (None: untouched).

    torchattacks' APGD, FAB and Square call ``torch.manual_seed`` themselves; inside
    this block that cannot leak into the training's random stream.
    """
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generate(attack: torchattacks.attack.Attack, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             mode: AttackMode, *, seed: int | None = None, fp32: bool = False) -> torch.Tensor:
    """Adversarial examples of ``images`` by ``attack`` with the layers in ``mode``; the model's modes are restored.

    ``fp32`` turns autocast off (evaluation is in full precision); ``seed`` runs
    the attack in a forked random state seeded with it.
    """
    with ExitStack() as stack:
        stack.enter_context(attack_layer_mode(model, mode))
        stack.enter_context(torch.enable_grad())
        stack.enter_context(seeded(seed, images.device))
        if fp32:
            stack.enter_context(torch.autocast(images.device.type, enabled=False))
            images = images.float()
        adversarial = attack.forward(images, labels)
    return adversarial.detach()


def within_threat_model(adversarial: torch.Tensor, images: torch.Tensor, epsilon: float,
                        tolerance: float = 1e-5) -> torch.Tensor:
    """Per sample: inside the L-inf ball of radius epsilon around the image and inside [0, 1].

    An example outside does not count as broken, whatever the attack returned.
    """
    distance = (adversarial - images).abs().flatten(1).amax(1)
    in_box = (adversarial >= -tolerance).flatten(1).all(1) & (adversarial <= 1 + tolerance).flatten(1).all(1)
    return (distance <= epsilon + tolerance) & in_box
