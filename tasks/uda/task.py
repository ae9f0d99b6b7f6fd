"""The domain-adaptation task: its declarations (pair axis, selection on source data) and how it builds a run.

Grid coordinates are the method, the two domains and the per-domain batch;
the table axis is the pair (``source -> target``) with an average column, so
the record's ``dataset`` is the benchmark the pair belongs to
(``fmnist_fmnistm``, ``digits``, ``office31``, ``office_home``) and every pair
of a benchmark shares one table per method and batch size.

Two batch sizes, because a norm sees one and the data loader the other: the
record's ``batch_size`` is what one normalizing forward pass holds (``2 x`` the
per-domain batch for a joint DANN/CDAN pass, as BN's statistics see it; the
per-domain batch otherwise), and ``per_domain_batch_size`` (``--batch_size``,
a grid coordinate, so table titles show both) is what each domain contributes
per step. The protocol choices that change what a norm sees or how it trains,
``domain_batches`` and ``lr_scaling``, are recorded and shown in the caption.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn

from normlayers import resolve_norm

from ..runner.config import RunConfig
from ..runner.errors import ConfigError
from ..runner.task import LAST, AxisPoint, MetricSpec, SelectionRule, Stage, StageResult, TableAxis, Task, best_on
from ..runner.world import world_size_of
from .config import ADABN_METHODS, ADVERSARIAL_METHODS, UdaConfig, effective_lr, normalization_batch
from .domains import check_pair, get_domain, pair_dataset, pair_label, pair_order

__all__ = ["UdaTask", "UDA", "PAIR_AXIS", "SOURCE_SELECTION", "ORACLE_SELECTION"]

PAIR_AXIS = TableAxis("pair", "source -> target", ("source", "target"), average=True)
SOURCE_SELECTION = best_on("val/source_acc", "max", "best source validation accuracy")
ORACLE_SELECTION = best_on("val/target_acc", "max", "best target validation accuracy (oracle: labelled target)")
_dry_run_verdicts: dict[tuple, str | None] = {}


def _cfg(cfg: RunConfig) -> UdaConfig:
    assert isinstance(cfg, UdaConfig)
    return cfg


class UdaTask(Task):
    name = "uda"
    config_class = UdaConfig
    description = ("Unsupervised domain adaptation (source-only, DANN, CDAN, AdaBN, target oracle) from a labelled "
                   "source domain to an unlabelled target domain.")
    table_axis = PAIR_AXIS
    grid_coordinates = {"method": "method", "source": "data.source", "target": "data.target",
                        "per_domain_batch_size": "batch_size"}
    batch_size_meaning = ("record: images in one normalizing forward pass per device during training (2 x the "
                          "per-domain batch for a joint DANN/CDAN pass, else the per-domain batch); --batch_size and "
                          "per_domain_batch_size: images per domain per device per training step")

    # --- identity and declarations -----------------------------------------------------------------
    def _domains(self, cfg: RunConfig):
        cfg = _cfg(cfg)
        return get_domain(cfg.data.source, "data.source"), get_domain(cfg.data.target, "data.target")

    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        source, target = self._domains(cfg)
        return pair_dataset(source, target), _cfg(cfg).model.name

    def normalization_batch(self, cfg: RunConfig) -> int:
        return normalization_batch(_cfg(cfg))

    def axis_point(self, cfg: RunConfig) -> AxisPoint:
        source, target = self._domains(cfg)
        return AxisPoint(f"{source.name}->{target.name}", pair_label(source, target), pair_order(source, target))

    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        specs = (MetricSpec("test/target_acc", "target accuracy", primary=True),
                 MetricSpec("test/source_acc", "source accuracy"))
        if _cfg(cfg).method in ADABN_METHODS:
            specs += (MetricSpec("test/target_acc_adabn", "target accuracy with AdaBN"),)
        return specs

    def selection(self, cfg: RunConfig) -> SelectionRule:
        cfg = _cfg(cfg)
        if cfg.selection == "last":
            return LAST
        return ORACLE_SELECTION if cfg.method == "oracle" else SOURCE_SELECTION

    def protocol(self, cfg: RunConfig) -> dict[str, Any]:
        cfg = _cfg(cfg)
        return {"domain_batches": cfg.domain_batches, "lr_scaling": cfg.optim.lr_scaling}

    def stages(self, cfg: RunConfig) -> tuple[Stage, ...]:
        cfg = _cfg(cfg)
        per_step = cfg.batch_size * (2 if cfg.method in ADVERSARIAL_METHODS else 1)
        return (Stage("train", self.selection(cfg), cfg.trainer.epochs, per_step, max_steps=cfg.trainer.max_steps),)

    def record_extras(self, cfg: RunConfig, results: list[StageResult]) -> dict[str, Any]:
        """The per-domain batch beside the record's (normalizing) ``batch_size``, and the learning rate that ran."""
        cfg = _cfg(cfg)
        return {"per_domain_batch_size": cfg.batch_size, "lr_effective": effective_lr(cfg, world_size_of(cfg))}

    # --- checks before anything runs ------------------------------------------------------------------
    def compiled_networks(self, cfg: RunConfig, module: L.LightningModule) -> tuple[nn.Module, ...]:
        # DANN and CDAN call net.features and net.classifier apart (net(x) calls both); the discriminator stays eager
        net = module.net  # type: ignore[attr-defined]
        return (net.features, net.classifier)

    def diagnostics_support(self, cfg: RunConfig) -> str | None:
        return ("uda is not supported yet: a DANN/CDAN batch normalizes two domains together, so one probe set from "
                "one domain would measure a different population (run classification or adversarial with diagnostics)")

    def validate(self, cfg: RunConfig) -> None:
        cfg = _cfg(cfg)
        source, target = self._domains(cfg)
        check_pair(source, target)
        if cfg.method == "oracle" and target.kind == "folder":
            raise ConfigError(f"method=oracle with target {target.name}: {target.benchmark} has no test split apart "
                              "from the images an oracle would train on; the oracle runs on the small-image pairs")
        resolved = resolve_norm(cfg.norm)
        if (cfg.method in ADABN_METHODS and cfg.adabn and resolved.entry.keeps_running_stats
                and resolved.kwargs.get("track_running_stats") is False):
            raise ConfigError(f"adabn=true with norm {cfg.norm}: AdaBN re-estimates running statistics, which "
                              "track_running_stats=false does not keep; drop that argument or set adabn=false")
        if cfg.model.weights and cfg.model.name != "resnet50":
            raise ConfigError(f"model.weights is for resnet50 (a local ImageNet checkpoint); model.name={cfg.model.name}")

    def locate_data(self, cfg: RunConfig) -> None:
        from .loading import data_root, locate_domain

        cfg = _cfg(cfg)
        source, target = self._domains(cfg)
        root = data_root(cfg.data.root, source, target)
        for domain in (source, target):
            locate_domain(domain, root, cfg.data.download)
        if cfg.model.weights and not Path(cfg.model.weights).expanduser().is_file():
            raise ConfigError(f"model.weights={cfg.model.weights}: no such file (pretrained weights are never "
                              "downloaded; point it to a local checkpoint, e.g. torchvision's resnet50 ImageNet weights)")

    def _geometry(self, cfg: RunConfig) -> tuple[int, int]:
        from .datamodule import pair_geometry

        source, target = self._domains(cfg)
        return pair_geometry(source, target, _cfg(cfg).data.image_size)

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        channels, size = self._geometry(cfg)
        return (channels, size, size)

    def build_network(self, cfg: RunConfig) -> nn.Module:
        from .models import build_network

        cfg = _cfg(cfg)
        channels, size = self._geometry(cfg)
        source, _ = self._domains(cfg)
        return build_network(cfg.model.name, norm=str(cfg.norm), num_classes=source.num_classes, in_channels=channels,
                             image_size=size, width=cfg.model.width, feature_dim=cfg.model.feature_dim,
                             weight_standardization=cfg.model.weight_standardization)

    def dry_run(self, cfg: RunConfig) -> None:
        """The shared dry forward pass, once per network shape and benchmark: the method and the direction
        do not change the feature extractor, so a sweep's methods and pairs share one verdict."""
        c = _cfg(cfg)
        source, _ = self._domains(c)
        key = (str(c.norm), c.model.name, c.model.width, c.model.feature_dim, c.model.weight_standardization,
               self.input_shape(c), source.num_classes, self.identity(c)[0], self.normalization_batch(c))
        if key not in _dry_run_verdicts:
            try:
                super().dry_run(cfg)
                _dry_run_verdicts[key] = None
            except ConfigError as exc:
                _dry_run_verdicts[key] = str(exc)
        if _dry_run_verdicts[key] is not None:
            raise ConfigError(_dry_run_verdicts[key])

    # --- building and running ---------------------------------------------------------------------------
    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]
              ) -> tuple[L.LightningModule, L.LightningDataModule]:
        from .datamodule import UdaDataModule
        from .module import UdaModule

        cfg = _cfg(cfg)
        datamodule = UdaDataModule(cfg)
        module = UdaModule(
            norm=str(cfg.norm), method=cfg.method, domain_batches=cfg.domain_batches, trade_off=cfg.trade_off,
            adabn=cfg.adabn, num_classes=datamodule.num_classes, in_channels=datamodule.channels,
            image_size=datamodule.image_size, model=cfg.model, optim=cfg.optim, discriminator=cfg.discriminator,
            cdan=cfg.cdan, seed=cfg.seed, lr=effective_lr(cfg, world_size_of(cfg)),
        )
        return module, datamodule

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if getattr(module, "adabn_summary", None) is not None:
            out["adabn"] = module.adabn_summary
        out.update(getattr(module, "data_provenance", {}))
        features = getattr(getattr(module, "net", None), "features", None)
        if getattr(features, "weights_loaded", 0):
            out["weights_loaded_tensors"] = features.weights_loaded
            out["weights_skipped"] = features.weights_skipped[:20]
        return out

    def shrink(self, cfg: RunConfig) -> RunConfig:
        cfg = _cfg(super().shrink(cfg))
        data = dataclasses.replace(cfg.data, val_size=48, fraction=min(cfg.data.fraction, 0.003),
                                   test_fraction=min(cfg.data.test_fraction, 0.01), eval_batch_size=64, num_workers=0)
        model = dataclasses.replace(cfg.model, width=4, feature_dim=16)
        discriminator = dataclasses.replace(cfg.discriminator, hidden=16)
        return dataclasses.replace(cfg, data=data, model=model, discriminator=discriminator,
                                   batch_size=min(cfg.batch_size, 8))


UDA = UdaTask()
