"""The few-shot run configuration: method, episode shape, normalization protocol, data and schedules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from ..runner.checks import POSITIVE, Rule, at_least, checked, non_negative_int, positive_int
from ..runner.config import RunConfig

__all__ = [
    "FewShotConfig", "FewShotDataConfig", "Conv4Config", "EpisodeConfig", "OuterLoopConfig", "ProtoNetConfig",
    "InnerLoopConfig", "METHODS",
]

METHODS = ("protonet", "maml", "anil")
_FILTERS = Rule(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                "an integer >= 1, or null for the method's reference width")


@dataclass
class FewShotDataConfig:
    """Few-shot data set.

    Attributes:
        name: fashion_mnist_rot (embedded: Fashion-MNIST x 4 rotations, split by base class), cifar_fs, omniglot,
            mini_imagenet (read from the data root).
        root: data root (default: $NORMBENCH_DATA); the embedded set needs none.
        seed: the data seed: the Fashion-MNIST images used, the Omniglot character split and the fixed validation and
            test episodes. Never the run seed: every norm and every run seed sees the same episodes.
        images_per_class: images of each Fashion-MNIST base class (each rotated class holds them all, turned); the
            other sets use every image they have.
        cross_domain: none, or digits: also meta-test on UCI digit episodes (metric test/digits_acc); needs 1x28x28
            inputs (fashion_mnist_rot, omniglot).
        split: the named class split of fashion_mnist_rot: base_4_2_4 (default: train T-shirt, Trouser, Dress,
            Sandal; validation Pullover, Bag; test Coat, Shirt, Sneaker, Ankle boot) or base_6_2_2 (the split of
            earlier records: test Bag and Ankle boot only); null: the data set's default. The other sets have one
            split (their benchmark's).
    """

    name: Literal["fashion_mnist_rot", "cifar_fs", "omniglot", "mini_imagenet"] = "fashion_mnist_rot"
    root: Optional[str] = None
    seed: int = checked(0, non_negative_int)
    images_per_class: int = checked(600, at_least(2))
    cross_domain: Literal["none", "digits"] = "none"
    split: Optional[Literal["base_4_2_4", "base_6_2_2"]] = None


@dataclass
class Conv4Config:
    """The CNN-4 backbone.

    Attributes:
        filters: filters of every block; default: 64, or 32 for MAML and ANIL on mini-ImageNet (Finn et al., 2017).
        weight_standardization: standardize every convolution's weight per output channel (Qiao et al., 2019;
            normlayers.weight_standardization); tables label such runs "<norm> + WS".
    """

    filters: Optional[int] = checked(None, _FILTERS)
    weight_standardization: bool = False


@dataclass
class EpisodeConfig:
    """Fixed evaluation episodes (drawn from the data seed alone, hashed in the record).

    Attributes:
        test_episodes: meta-test episodes (600 in the literature).
        val_episodes: meta-validation episodes, evaluated after every epoch (selection: best val/acc).
        test_queries: query images per class in validation and test episodes (15 in the literature).
    """

    test_episodes: int = checked(600, at_least(2))
    val_episodes: int = checked(100, at_least(2))
    test_queries: int = checked(15, positive_int)


@dataclass
class OuterLoopConfig:
    """The meta-optimizer: Adam over ``meta_batch`` episodes per update.

    Attributes:
        meta_batch: episodes (tasks) per meta-update; ``--batch_size`` overrides it.
        lr: Adam's learning rate.
        lr_halve_every: halve the learning rate every this many meta-updates (0: constant).
    """

    meta_batch: int = checked(1, positive_int)
    lr: float = checked(1e-3, POSITIVE)
    lr_halve_every: int = checked(0, non_negative_int)


@dataclass
class ProtoNetConfig(OuterLoopConfig):
    """Prototypical networks (Snell et al., 2017): squared Euclidean distance to class-mean embeddings.

    Defaults are Snell et al.'s: one episode per update, Adam 1e-3 halved every 2,000 episodes.
    """

    meta_batch: int = checked(1, positive_int)
    lr_halve_every: int = checked(2000, non_negative_int)


@dataclass
class InnerLoopConfig(OuterLoopConfig):
    """MAML (Finn et al., 2017) or ANIL (Raghu et al., 2020): gradient steps on the support set.

    Defaults are learn2learn's example values; each shipped config pins its own and names the source.

    Attributes:
        inner_lr: step size of the inner (adaptation) loop.
        train_steps: adaptation steps during meta-training.
        test_steps: adaptation steps during meta-validation and meta-test.
        first_order: drop the second-order terms of the meta-gradient (first-order MAML).
    """

    meta_batch: int = checked(32, positive_int)
    lr: float = checked(3e-3, POSITIVE)
    lr_halve_every: int = checked(0, non_negative_int)
    inner_lr: float = checked(0.5, POSITIVE)
    train_steps: int = checked(1, positive_int)
    test_steps: int = checked(1, positive_int)
    first_order: bool = False


@dataclass
class FewShotConfig(RunConfig):
    """Few-shot run: a method meta-trains CNN-4 (the norm under test in every block) on N-way K-shot episodes.

    ``batch_size`` is not the normalization batch here: that follows from the
    episode (ways x (shots + queries) for a joint forward, ways x shots for the
    support set alone) and is what the record's ``batch_size`` holds. On the
    command line ``--batch_size`` sets the meta-batch (episodes per
    meta-update); 0 keeps the method section's pinned ``meta_batch``.

    Example:
        >>> from tasks.fewshot.config import FewShotConfig
        >>> cfg = FewShotConfig(norm="bgn", method="maml", ways=5, shots=1)
        >>> cfg.maml.inner_lr, cfg.episodes.test_episodes, cfg.episodes.test_queries
        (0.5, 600, 15)

    Attributes:
        batch_size: episodes per meta-update (the meta-batch); 0: the method section's meta_batch.
        method: protonet, maml or anil.
        ways: classes per episode (training and evaluation).
        shots: labelled support images per class.
        queries: query images per class in meta-training episodes.
        forward: joint (support and query through the network together) or separate (the support set alone, then
            the query set); default: the method's reference (ProtoNet joint, MAML and ANIL separate).
        norm_mode: transductive (norm layers in train mode on each evaluation episode's own images; running
            statistics never used) or running (eval mode, running statistics from meta-training); default: the
            method's reference (ProtoNet running, MAML and ANIL transductive).
        steps_per_epoch: meta-updates per epoch (validation after each).
    """

    batch_size: int = checked(0, non_negative_int)
    method: Literal["protonet", "maml", "anil"] = "protonet"
    ways: int = checked(5, at_least(2))
    shots: int = checked(1, positive_int)
    queries: int = checked(15, positive_int)
    forward: Optional[Literal["joint", "separate"]] = None
    norm_mode: Optional[Literal["transductive", "running"]] = None
    steps_per_epoch: int = checked(500, positive_int)
    data: FewShotDataConfig = field(default_factory=FewShotDataConfig)
    model: Conv4Config = field(default_factory=Conv4Config)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    protonet: ProtoNetConfig = field(default_factory=ProtoNetConfig)
    maml: InnerLoopConfig = field(default_factory=InnerLoopConfig)
    anil: InnerLoopConfig = field(default_factory=InnerLoopConfig)
