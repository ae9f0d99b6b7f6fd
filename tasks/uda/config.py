"""The domain-adaptation run configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from ..runner.checks import FRACTION, NON_NEGATIVE, POSITIVE, Rule, at_least, between, checked, non_negative_int, positive_int
from ..runner.config import RunConfig

__all__ = ["UdaConfig", "UdaDataConfig", "UdaModelConfig", "UdaOptimConfig", "DiscriminatorConfig", "CdanConfig",
           "METHODS", "ADVERSARIAL_METHODS", "ADABN_METHODS", "normalization_batch", "effective_lr"]

METHODS = ("source_only", "dann", "cdan", "oracle")
ADVERSARIAL_METHODS = ("dann", "cdan")
ADABN_METHODS = ("source_only", "dann", "cdan")  # trained without target labels: AdaBN is a cheap extra evaluation
_OPTIONAL_SIZE = Rule(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 8),
                      "null (the pair's native size) or an integer >= 8")


@dataclass
class UdaDataConfig:
    """The source -> target pair and the input pipeline.

    Attributes:
        source: labelled domain: fashion_mnist, fashion_mnist_m, mnist, mnist_m, usps, svhn, amazon, dslr,
            webcam, art, clipart, product, real_world.
        target: unlabelled domain, with the source's class names.
        root: data root (default: $NORMBENCH_DATA, else ~/.cache/normbench/data); the Fashion pair needs none.
        cache_dir: where Fashion-MNIST-M is built and cached (default: <data root>/fashion_mnist_m when a root
            is given, else ~/.cache/normbench/fashion_mnist_m).
        download: let torchvision download Fashion-MNIST when it is missing (nothing else is ever downloaded).
        image_size: side length the images are resized to (null: the larger native size of the pair; 224 for
            Office); grey domains are replicated to 3 channels when the other domain has colour.
        val_size: images held out from the labelled domain's training split for validation (model selection).
        split_seed: seed of the validation split and of the subsets; the same for every run.
        fraction: fraction of each domain's training images used (a fixed subset, for quick runs).
        test_fraction: fraction of each test split evaluated (a fixed subset, for quick runs).
        augment: training augmentation of the small-image domains (none, crop, flip, crop_flip); Office
            images always get a random resized crop and a flip.
        num_workers: data loader worker processes (Office decodes JPEGs: use some).
        eval_batch_size: batch size of validation, test and the AdaBN statistics pass.
    """

    source: str = "fashion_mnist"
    target: str = "fashion_mnist_m"
    root: Optional[str] = None
    cache_dir: Optional[str] = None
    download: bool = False
    image_size: Optional[int] = checked(None, _OPTIONAL_SIZE)
    val_size: int = checked(1000, positive_int)
    split_seed: int = checked(0, non_negative_int)
    fraction: float = checked(1.0, FRACTION)
    test_fraction: float = checked(1.0, FRACTION)
    augment: Literal["none", "crop", "flip", "crop_flip"] = "none"
    num_workers: int = checked(0, non_negative_int)
    eval_batch_size: int = checked(256, at_least(2))


@dataclass
class UdaModelConfig:
    """The network: a feature extractor holding the norm under test, and a linear classifier.

    Attributes:
        name: lenet (28/32-pixel inputs) or resnet50 (Office, 224 pixels).
        width: LeNet's channels in the first convolution (the second has twice as many).
        feature_dim: features the classifier and the domain discriminator read (LeNet's fully connected layer,
            ResNet-50's bottleneck after pooling).
        weights: a local checkpoint (a state dict, e.g. torchvision's ImageNet ResNet-50) loaded into the
            backbone where names and shapes match; null trains from scratch (numbers then are not comparable
            to published ones, which start from ImageNet weights).
        backbone_lr_mult: learning-rate factor of the backbone (0.1 with pretrained weights, as usual).
        weight_standardization: standardize every convolution's weight per output channel (Qiao et al., 2019;
            normlayers.weight_standardization); tables label such runs "<norm> + WS".
    """

    name: Literal["lenet", "resnet50"] = "lenet"
    width: int = checked(16, positive_int)
    feature_dim: int = checked(128, positive_int)
    weights: Optional[str] = None
    backbone_lr_mult: float = checked(1.0, POSITIVE)
    weight_standardization: bool = False


@dataclass
class UdaOptimConfig:
    """SGD with the annealed learning rate of DANN: lr * (1 + 10 p)^-0.75, p the training progress in [0, 1].

    Attributes:
        lr: initial learning rate at ``base_batch_size`` images per domain per step.
        lr_scaling: linear (lr x per-domain batch x devices / base_batch_size, the linear scaling rule every
            other task applies; source-only and DANN at one per-domain batch get the same rate) or none (lr as
            given at every batch, as DANN and the Transfer-Learning-Library do at their one batch size).
        base_batch_size: the per-domain batch at which ``lr`` applies unscaled.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay.
        schedule: annealed (the DANN schedule) or constant.
    """

    lr: float = checked(0.01, POSITIVE)
    lr_scaling: Literal["linear", "none"] = "linear"
    base_batch_size: int = checked(32, positive_int)
    momentum: float = checked(0.9, between(0, 1, high_open=True))
    nesterov: bool = True
    weight_decay: float = checked(1e-3, NON_NEGATIVE)
    schedule: Literal["annealed", "constant"] = "annealed"


@dataclass
class DiscriminatorConfig:
    """The domain discriminator of DANN and CDAN: a plain MLP, no normalization, the same for every norm.

    Attributes:
        hidden: width of its two hidden layers.
        dropout: dropout after each hidden layer.
    """

    hidden: int = checked(1024, positive_int)
    dropout: float = checked(0.5, between(0, 1, high_open=True))


@dataclass
class CdanConfig:
    """CDAN's conditioning of the discriminator on the classifier's predictions.

    Attributes:
        entropy_conditioning: CDAN+E: weight each example by 1 + exp(-entropy of its prediction).
        map: multilinear (features x predictions), randomized (a fixed random projection of both), or auto
            (multilinear up to 4096 dimensions, as in the CDAN paper).
        random_dim: output size of the randomized map.
    """

    entropy_conditioning: bool = False
    map: Literal["auto", "multilinear", "randomized"] = "auto"
    random_dim: int = checked(1024, positive_int)


@dataclass
class UdaConfig(RunConfig):
    """Unsupervised domain adaptation run: train on labelled source images (and unlabelled target images),
    report accuracy on the target domain.

    Example:
        >>> from tasks.uda.config import UdaConfig
        >>> cfg = UdaConfig(norm="bgn:num_groups=1", method="dann")
        >>> cfg.data.source, cfg.data.target, cfg.domain_batches, cfg.batch_size
        ('fashion_mnist', 'fashion_mnist_m', 'joint', 32)

    Attributes:
        method: source_only, dann, cdan (each with its AdaBN evaluation), or oracle (trained on labelled target
            images: the upper bound).
        domain_batches: joint (source and target images in one forward pass: the norm sees 2 x batch_size
            images of both domains) or separate (one pass per domain: domain-specific batch statistics).
        trade_off: weight of the adversarial (transfer) loss.
        adabn: source_only, dann and cdan runs also report AdaBN: the running statistics re-estimated on the
            target training images, for norms whose registry entry keeps running statistics.
        selection: source_val (the checkpoint with the best source validation accuracy; never target labels)
            or last (the last checkpoint: the most adapted one, at the end of the reversal and lr schedules).
    """

    batch_size: int = checked(32, positive_int)
    method: Literal["source_only", "dann", "cdan", "oracle"] = "source_only"
    domain_batches: Literal["joint", "separate"] = "joint"
    trade_off: float = checked(1.0, NON_NEGATIVE)
    adabn: bool = True
    selection: Literal["source_val", "last"] = "source_val"
    data: UdaDataConfig = field(default_factory=UdaDataConfig)
    model: UdaModelConfig = field(default_factory=UdaModelConfig)
    optim: UdaOptimConfig = field(default_factory=UdaOptimConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    cdan: CdanConfig = field(default_factory=CdanConfig)


def normalization_batch(cfg: UdaConfig) -> int:
    """Images in one normalizing forward pass during training: the record's ``batch_size``.

    A joint DANN/CDAN pass concatenates the source and target batches (``2 x batch_size``); a separate pass, and
    every source-only or oracle pass, holds one domain's ``batch_size`` images.
    """
    joint = cfg.method in ADVERSARIAL_METHODS and cfg.domain_batches == "joint"
    return cfg.batch_size * (2 if joint else 1)


def effective_lr(cfg: UdaConfig, world_size: int = 1) -> float:
    """The initial learning rate that runs: ``optim.lr`` scaled by the per-domain batch (``lr_scaling: linear``)."""
    if cfg.optim.lr_scaling == "none":
        return cfg.optim.lr
    return cfg.optim.lr * cfg.batch_size * world_size / cfg.optim.base_batch_size
