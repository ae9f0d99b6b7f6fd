"""The NAS run configuration: data, the search (supernet and bilevel optimizer) and the retrain.

Defaults are the DARTS paper's CIFAR-10 protocol (Liu et al., 2019): search 8
cells, C=16, 50 epochs at batch 64, SGD 0.025 (cosine to 0.001, momentum 0.9,
weight decay 3e-4, clip 5) for the weights and Adam 3e-4 (betas 0.5, 0.999,
weight decay 1e-3) for alpha; retrain 20 cells, C=36, 600 epochs at batch 96,
SGD 0.025 (cosine to 0), cutout 16, drop-path 0.2, auxiliary head 0.4. The
retrain length is ``trainer.epochs`` / ``trainer.max_steps`` (the task's main
training stage); the search's is ``search.epochs`` / ``search.max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from ..data.config import DataConfig
from ..runner.checks import FRACTION, NON_NEGATIVE, POSITIVE, Rule, at_least, between, checked, non_negative_int, positive_int
from ..runner.config import RunConfig
from .arch_schedule import DARTS_ARCH_UPDATES

__all__ = ["NasDataConfig", "NasModelConfig", "NasOptions", "SearchConfig", "RetrainConfig", "NasConfig"]

_OPEN_FRACTION = between(0, 1, low_open=True, high_open=True)
_MAX_STEPS = Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v >= 1),
                  "-1 (no limit) or an integer >= 1")
_OPTIONAL_BATCH = Rule(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                       "null (the search batch) or an integer >= 1")
_MOMENTUM = between(0, 1, high_open=True)
_WARMUP = between(0, 1, high_open=True)
_OPTIONAL_UPDATE_BATCH = Rule(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                              "null (one alpha update per batch) or an integer >= 1")


@dataclass
class NasDataConfig(DataConfig):
    """Data set and input pipeline of the NAS task (a tensor data set: fashion_mnist, cifar10, cifar100).

    Attributes:
        pad_to: zero-pad images to this size (0: keep their size). Fashion-MNIST's 28x28 becomes 32x32, which
            the auxiliary head (8x8 maps after two reductions) and FactorizedReduce (even sizes) need.
    """

    pad_to: int = checked(32, non_negative_int)


@dataclass
class NasModelConfig:
    """What both networks (the supernet and the final network) share; their sizes are in search and retrain.

    Attributes:
        weight_standardization: standardize every convolution's weight per output channel (Qiao et al., 2019;
            normlayers.weight_standardization) in the supernet and the final network; tables label such runs
            "<norm> + WS".
    """

    weight_standardization: bool = False


@dataclass
class NasOptions:
    """How the cell is found.

    Attributes:
        order: first (alpha gradient at the current weights) or second (DARTS' unrolled step with the
            finite-difference Hessian-vector product).
        genotype: skip the search and retrain this cell: a published name (DARTS_V1, DARTS_V2) or a genotype
            string Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...]); null: search.
        fd_epsilon: the finite-difference step of the second order is fd_epsilon / ||grad of L_val wrt w'|| (0.01).
    """

    order: Literal["first", "second"] = "first"
    genotype: Optional[str] = None
    fd_epsilon: float = checked(0.01, POSITIVE)


@dataclass
class SearchConfig:
    """The supernet and its bilevel optimization (the training split halved into a weight and an alpha half).

    Attributes:
        epochs: search epochs (passes over the weight half).
        max_steps: stop the search after this many batches (-1: no limit); each batch is an alpha and a weight step.
        layers: cells of the supernet (reductions at layers//3 and 2*layers//3; at least 3).
        channels: C of the first cells (even: FactorizedReduce concatenates two C/2 halves).
        fraction: fraction of the training split (after data.fraction) the search uses; the retrain uses all of it.
        train_portion: fraction of the search's images that trains the weights; the rest trains alpha.
        lr: weight learning rate at base_batch_size (scaled linearly with the batch per step).
        base_batch_size: the batch at which lr applies.
        lr_min: the cosine schedule's final weight learning rate (scaled like lr).
        momentum: SGD momentum of the weights.
        weight_decay: SGD weight decay of the weights (never applied to alpha).
        grad_clip: clip the weights' gradient norm to this (0: no clipping).
        arch_lr: Adam learning rate of alpha.
        arch_beta1: Adam beta1 of alpha.
        arch_beta2: Adam beta2 of alpha.
        arch_weight_decay: Adam (L2) weight decay of alpha.
        arch_warmup: fraction of the search's batches, at its start, that train the weights only (alpha is not
            stepped; NNI's DARTS warm-up, as a fraction so that it is the same share at every batch and budget).
        arch_lr_scaling: none (arch_lr per update, DARTS) or budget (arch_lr x arch_reference_updates / the
            search's alpha updates: Adam's room to move, lr x updates, held at DARTS'; see arch_schedule.py).
        arch_reference_updates: the alpha updates whose room budget scaling reproduces (DARTS: 50 x 391 = 19,550).
        arch_update_batch: null (one alpha update per batch, DARTS) or alpha-half images per alpha update: the
            alpha gradient is averaged over arch_update_batch / batch_size batches, so every search batch on the
            axis makes the same number of alpha updates (a multiple of every batch size on the axis).
    """

    epochs: int = checked(50, positive_int)
    max_steps: int = checked(-1, _MAX_STEPS)
    layers: int = checked(8, at_least(3))
    channels: int = checked(16, positive_int)
    fraction: float = checked(1.0, FRACTION)
    train_portion: float = checked(0.5, _OPEN_FRACTION)
    lr: float = checked(0.025, POSITIVE)
    base_batch_size: int = checked(64, positive_int)
    lr_min: float = checked(0.001, NON_NEGATIVE)
    momentum: float = checked(0.9, _MOMENTUM)
    weight_decay: float = checked(3e-4, NON_NEGATIVE)
    grad_clip: float = checked(5.0, NON_NEGATIVE)
    arch_lr: float = checked(3e-4, POSITIVE)
    arch_beta1: float = checked(0.5, _MOMENTUM)
    arch_beta2: float = checked(0.999, _MOMENTUM)
    arch_weight_decay: float = checked(1e-3, NON_NEGATIVE)
    arch_warmup: float = checked(0.0, _WARMUP)
    arch_lr_scaling: Literal["none", "budget"] = "none"
    arch_reference_updates: int = checked(DARTS_ARCH_UPDATES, positive_int)
    arch_update_batch: Optional[int] = checked(None, _OPTIONAL_UPDATE_BATCH)


@dataclass
class RetrainConfig:
    """The evaluation network built from the genotype and trained from scratch (length: trainer.epochs).

    Attributes:
        layers: cells (reductions at layers//3 and 2*layers//3; at least 3).
        channels: C of the first cells (even).
        batch_size: retrain batch per device; null: the search batch (batch_size).
        lr: learning rate at base_batch_size (scaled linearly with the batch).
        base_batch_size: the batch at which lr applies.
        lr_min: the cosine schedule's final learning rate (scaled like lr).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        grad_clip: clip the gradient norm to this (0: no clipping).
        auxiliary_weight: weight of the auxiliary head's loss (0: no head).
        drop_path_prob: final drop-path probability (raised linearly from 0 over the epochs).
        cutout_length: side of the cutout square on training images (0: no cutout).
        norm: the final network's norm spec; null: the norm under test. Set to one common evaluator (bn) for
            every norm of a sweep, the retrained accuracy measures the norm's effect on the search alone.
    """

    layers: int = checked(20, at_least(3))
    channels: int = checked(36, positive_int)
    batch_size: Optional[int] = checked(None, _OPTIONAL_BATCH)
    lr: float = checked(0.025, POSITIVE)
    base_batch_size: int = checked(96, positive_int)
    lr_min: float = checked(0.0, NON_NEGATIVE)
    momentum: float = checked(0.9, _MOMENTUM)
    weight_decay: float = checked(3e-4, NON_NEGATIVE)
    grad_clip: float = checked(5.0, NON_NEGATIVE)
    auxiliary_weight: float = checked(0.4, NON_NEGATIVE)
    drop_path_prob: float = checked(0.2, between(0, 1, high_open=True))
    cutout_length: int = checked(16, non_negative_int)
    norm: Optional[str] = None


@dataclass
class NasConfig(RunConfig):
    """DARTS run: search a cell with the norm under test, derive it, retrain the network built from it.

    ``batch_size`` is the search batch per device (each step takes one batch of the weight half and one of the
    alpha half); ``retrain.batch_size`` the retrain's (default: the same). With ``nas.genotype`` set, only the
    retrain runs, and ``batch_size`` is the retrain batch.

    Example:
        >>> from tasks.nas.config import NasConfig
        >>> cfg = NasConfig(norm="bgn:num_groups=4", batch_size=64)
        >>> cfg.search.layers, cfg.search.channels, cfg.retrain.layers, cfg.retrain.channels, cfg.nas.order
        (8, 16, 20, 36, 'first')

    Attributes:
        data: data set and input pipeline.
        model: options of both networks (weight standardization).
        nas: search order or a fixed genotype.
        search: the supernet and its optimizers.
        retrain: the final network and its optimizer.
    """

    data: NasDataConfig = field(default_factory=NasDataConfig)
    model: NasModelConfig = field(default_factory=NasModelConfig)
    nas: NasOptions = field(default_factory=NasOptions)
    search: SearchConfig = field(default_factory=SearchConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    @property
    def retrain_batch_size(self) -> int:
        return self.retrain.batch_size or self.batch_size

    @property
    def retrain_norm(self) -> str:
        """The final network's norm spec: retrain.norm, or the norm under test."""
        return str(self.norm) if self.retrain.norm is None else self.retrain.norm
