"""The few-shot task: declarations (ways/shots axis, episode accuracy with its 95% CI) and building."""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
from torch import nn

from ..runner.config import RunConfig
from ..runner.errors import ConfigError
from ..runner.task import AxisPoint, MetricSpec, SelectionRule, Stage, StageResult, TableAxis, Task, best_on
from ..runner.world import world_size_of
from .config import FewShotConfig, InnerLoopConfig
from .data.base import FewShotDataset
from .data.fashion_rot import MAX_IMAGES_PER_CLASS
from .data.registry import CROSS_DOMAIN, SPLIT_NAMES, data_root, fewshot_dataset, split_name
from .metrics import EPISODE_FILE, test_metric
from .models import Conv4, Conv4Classifier, conv4_name
from .protocol import (
    REFERENCE,
    filters_of,
    forward_of,
    keeps_no_running_stats,
    meta_batch_of,
    method_section,
    norm_mode_of,
    normalization_batch,
    other_norm_mode,
)

__all__ = ["FewShotTask", "FEWSHOT", "WAYS_SHOTS_AXIS"]

WAYS_SHOTS_AXIS = TableAxis("ways_shots", "ways/shots", ("ways", "shots"), batch_size_follows=True)


def _cfg(cfg: RunConfig) -> FewShotConfig:
    assert isinstance(cfg, FewShotConfig)
    return cfg


def _dataset(cfg: FewShotConfig) -> FewShotDataset:
    """The meta-training data set with the run's class split."""
    return fewshot_dataset(cfg.data.name, cfg.data.split)


def _datasets(cfg: FewShotConfig) -> list[tuple[FewShotDataset, tuple[str, ...]]]:
    """(data set, its splits used) for the run: the meta-splits, and a cross-domain test set if asked for."""
    out = [(_dataset(cfg), ("train", "validation", "test"))]
    if cfg.data.cross_domain != "none":
        out.append((CROSS_DOMAIN[cfg.data.cross_domain], ("test",)))
    return out


class FewShotTask(Task):
    name = "fewshot"
    config_class = FewShotConfig
    description = "Few-shot learning: ProtoNet, MAML and ANIL (learn2learn) on CNN-4, fixed test episodes for all norms."
    table_axis = WAYS_SHOTS_AXIS
    grid_coordinates = {"method": "method", "ways": "ways", "shots": "shots"}
    eval_needs_gradients = True  # MAML and ANIL adapt on every validation and test episode
    batch_size_meaning = ("record: images in one normalizing forward during meta-training (ways x (shots + queries) "
                          "joint, ways x shots separate); --batch_size: episodes per meta-update (0: the method's)")

    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        c = _cfg(cfg)
        return c.data.name, conv4_name(filters_of(c))

    def coordinates(self, cfg: RunConfig) -> dict[str, Any]:
        c = _cfg(cfg)
        coords = super().coordinates(c)
        if c.batch_size > 0:  # an explicit meta-batch names the run (a sweep's batch_sizes must not collide)
            coords["meta_batch"] = c.batch_size
        return coords

    def normalization_batch(self, cfg: RunConfig) -> int:
        return normalization_batch(_cfg(cfg))

    def axis_point(self, cfg: RunConfig) -> AxisPoint:
        c = _cfg(cfg)
        return AxisPoint(f"{c.ways}w{c.shots}s", f"{c.ways}-way {c.shots}-shot", c.ways * 1000 + c.shots)

    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        """``test/acc`` (configured norm mode), the other mode's ``test/<mode>_acc`` beside it, then cross-domain."""
        c = _cfg(cfg)
        mode, second = norm_mode_of(c), other_norm_mode(c)
        sets = [("test", "mean accuracy over the fixed test episodes")]
        if c.data.cross_domain != "none":
            sets.append((c.data.cross_domain, f"cross-domain ({c.data.cross_domain}) mean episode accuracy"))
        specs = []
        for name, label in sets:
            group = None if second is None else ("norm_mode" if name == "test" else f"{name}_norm_mode")
            metric = test_metric(name)
            specs.append(MetricSpec(metric, label if second is None else f"{label}, {mode} (configured)",
                                    primary=name == "test", interval=f"{metric}_ci95", group=group,
                                    short=None if second is None else f"{mode} (configured)"))
            if second is not None:
                other = test_metric(name, second.mode)
                specs.append(MetricSpec(other, f"{label}, {second.mode}", interval=f"{other}_ci95", group=group,
                                        short=second.mode))
        return tuple(specs)

    def selection(self, cfg: RunConfig) -> SelectionRule:
        return best_on("val/acc", "max", "best mean accuracy on the fixed validation episodes")

    def protocol(self, cfg: RunConfig) -> dict[str, Any]:
        c = _cfg(cfg)
        return {"forward": forward_of(c), "norm_mode": norm_mode_of(c), "queries": c.queries,
                "test_queries": c.episodes.test_queries}

    def stages(self, cfg: RunConfig) -> tuple[Stage, ...]:
        c = _cfg(cfg)
        images = meta_batch_of(c) * c.ways * (c.shots + c.queries)
        return (Stage("train", self.selection(c), c.trainer.epochs, images, max_steps=c.trainer.max_steps),)

    # --- checks ---------------------------------------------------------------------------------------
    def diagnostics_support(self, cfg: RunConfig) -> str | None:
        return ("fewshot is not supported yet: its normalization batch is an episode drawn from a taskset, not a fixed "
                "image set, so the probe pass has no population to sample (run classification or adversarial with "
                "diagnostics)")

    def compile_support(self, cfg: RunConfig) -> str | None:
        if _cfg(cfg).method == "maml":
            return ("fewshot method=maml is not supported: learn2learn's clone() copies each module's __dict__, "
                    "so a clone would call the compiled original and ignore its adapted weights "
                    "(protonet and anil compile their CNN-4)")
        return None

    def compiled_networks(self, cfg: RunConfig, module: L.LightningModule) -> tuple[nn.Module, ...]:
        # ProtoNet's encoder, ANIL's body: the CNN-4 holding every norm; ANIL's linear head stays eager (it is cloned)
        learner = module.learner  # type: ignore[attr-defined]
        return (learner.encoder if _cfg(cfg).method == "protonet" else learner.body,)

    def validate(self, cfg: RunConfig) -> None:
        c = _cfg(cfg)
        if c.data.split is not None and c.data.split not in SPLIT_NAMES.get(c.data.name, ()):
            raise ConfigError(f"data.split={c.data.split} names a split of "
                              f"{', '.join(n for n, s in SPLIT_NAMES.items() if c.data.split in s)}; {c.data.name} has "
                              "one split (its benchmark's): leave data.split unset")
        if world_size_of(c) > 1:
            raise ConfigError("fewshot runs on one device (trainer.devices=1, trainer.num_nodes=1): an episode is the "
                              "normalization batch, and tasks are drawn from one process's random state")
        if c.data.name == "fashion_mnist_rot" and c.data.images_per_class > MAX_IMAGES_PER_CLASS:
            raise ConfigError(f"data.images_per_class={c.data.images_per_class}: Fashion-MNIST's training file has "
                              f"{MAX_IMAGES_PER_CLASS} images per class")
        for dataset, splits in _datasets(c):
            if dataset.input_shape != _dataset(c).input_shape:
                raise ConfigError(f"data.cross_domain={dataset.name} needs {'x'.join(map(str, dataset.input_shape))} "
                                  f"inputs like its meta-training set; {c.data.name} has "
                                  f"{'x'.join(map(str, _dataset(c).input_shape))}")
            for split in splits:
                self._check_split(c, dataset, split)
        if norm_mode_of(c) == "running" and keeps_no_running_stats(str(c.norm)):
            raise ConfigError(f"norm_mode=running evaluates with running statistics, but {c.norm} keeps none; "
                              "use norm_mode=transductive or a norm with running statistics")

    @staticmethod
    def _check_split(c: FewShotConfig, dataset: FewShotDataset, split: str) -> None:
        classes = dataset.classes[split]
        if c.ways > classes:
            raise ConfigError(f"ways={c.ways} is more than the {classes} classes of {dataset.name}'s {split} split")
        queries, what = (c.queries, "queries") if split == "train" else (c.episodes.test_queries, "episodes.test_queries")
        smallest = dataset.images_in_smallest_class(c.data.images_per_class)
        if c.shots + queries > smallest:
            raise ConfigError(f"shots + {what} = {c.shots} + {queries} is more than the {smallest} images of the "
                              f"smallest class in {dataset.name}'s {split} split")

    def locate_data(self, cfg: RunConfig) -> None:
        c = _cfg(cfg)
        for dataset, _ in _datasets(c):
            dataset.locate(data_root(c.data.root, dataset))

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        return _dataset(_cfg(cfg)).input_shape

    def build_network(self, cfg: RunConfig) -> nn.Module:
        c = _cfg(cfg)
        channels, size, _ = _dataset(c).input_shape
        if c.method == "maml":
            return Conv4Classifier(channels, filters_of(c), str(c.norm), size, c.ways, c.model.weight_standardization)
        return Conv4(channels, filters_of(c), str(c.norm), c.model.weight_standardization)

    # --- building -------------------------------------------------------------------------------------
    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]
              ) -> tuple[L.LightningModule, L.LightningDataModule]:
        from .datamodule import EpisodeSettings, FewShotDataModule
        from .module import FewShotModule

        c = _cfg(cfg)
        dataset = _dataset(c)
        settings = EpisodeSettings(
            ways=c.ways, shots=c.shots, queries=c.queries, test_queries=c.episodes.test_queries,
            meta_batch=meta_batch_of(c), steps_per_epoch=c.steps_per_epoch, val_episodes=c.episodes.val_episodes,
            test_episodes=c.episodes.test_episodes, seed=c.data.seed, images_per_class=c.data.images_per_class,
            cross_domain=c.data.cross_domain, root=c.data.root)
        section = method_section(c)
        inner = dataclasses.asdict(section) if isinstance(section, InnerLoopConfig) else None
        test_sets = ["test"] + ([c.data.cross_domain] if c.data.cross_domain != "none" else [])
        second = other_norm_mode(c)
        module = FewShotModule(
            norm=str(c.norm), method=c.method, ways=c.ways, shots=c.shots, in_channels=dataset.channels,
            image_size=dataset.image_size, filters=filters_of(c), forward=forward_of(c), norm_mode=norm_mode_of(c),
            mean=list(dataset.mean), std=list(dataset.std), lr=section.lr, lr_halve_every=section.lr_halve_every,
            inner=inner, test_sets=test_sets, weight_standardization=c.model.weight_standardization,
            second_mode=None if second is None else second.mode, second_evaluated=second is not None and second.evaluated)
        return module, FewShotDataModule(dataset, settings)

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        c = _cfg(cfg)
        datamodule = module.trainer.datamodule  # type: ignore[union-attr]
        hashes = datamodule.episode_hashes()
        out: dict[str, Any] = {
            "meta_batch": meta_batch_of(c),
            "filters": filters_of(c),
            "test_episodes": c.episodes.test_episodes,
            "val_episodes": c.episodes.val_episodes,
            "episode_file": EPISODE_FILE,
            "protocol_source": REFERENCE[c.method].source,
            "data_split": split_name(c.data.name, c.data.split),
            "test_norm_modes": self.norm_mode_metrics(c),
        }
        out.update({f"{name}_episodes_sha256": digest for name, digest in hashes.items()})
        return out

    @staticmethod
    def norm_mode_metrics(c: FewShotConfig) -> dict[str, str]:
        """{norm mode: its in-domain test metric}; a copied second mode says so (``same as test/acc: ...``)."""
        out = {norm_mode_of(c): "test/acc"}
        second = other_norm_mode(c)
        if second is not None:
            metric = test_metric("test", second.mode)
            out[second.mode] = metric if second.evaluated else f"{metric} (= test/acc: no layer uses batch statistics)"
        return out

    def shrink(self, cfg: RunConfig) -> RunConfig:
        c = _cfg(super().shrink(cfg))
        data = dataclasses.replace(c.data, images_per_class=min(c.data.images_per_class, 20))
        episodes = dataclasses.replace(c.episodes, test_episodes=6, val_episodes=4, test_queries=3)
        inner = {name: dataclasses.replace(getattr(c, name), meta_batch=2, train_steps=1, test_steps=2)
                 for name in ("maml", "anil")}
        model = dataclasses.replace(c.model, filters=16)
        trainer = dataclasses.replace(c.trainer, epochs=2)  # two validations: selection and resume have work to do
        return dataclasses.replace(c, data=data, episodes=episodes, model=model, trainer=trainer, queries=3,
                                   steps_per_epoch=3, protonet=dataclasses.replace(c.protonet, meta_batch=2), **inner)


FEWSHOT = FewShotTask()
