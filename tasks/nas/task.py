"""The NAS task: DARTS search -> derive -> retrain, as two stages of one run (docs/nas.md).

``stages(cfg)`` gives ``search`` then ``retrain``; the search passes the derived
genotype on through its outputs (JSON), and the retrain builds its network from
``earlier["search"].outputs["genotype"]``. With ``nas.genotype`` set (a published
cell such as DARTS_V2) only the retrain runs, which separates the norm's effect
on the final network from its effect on the search.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn

from normlayers import NormSpecError, resolve_norm

from ..data.registry import DATASETS, get_dataset_info, locate_dataset
from ..runner.checks import suggest
from ..runner.config import RunConfig
from ..runner.errors import ConfigError
from ..runner.prepare import check_batch_statistics
from ..runner.task import LAST, MetricSpec, SelectionRule, Stage, StageResult, Task
from ..runner.world import world_size_of
from .arch_schedule import accumulation_batches
from .config import NasConfig
from .data import NasDataModule, padded_size
from .draw import GENOTYPE_FIGURE, draw_genotype
from .genotypes import Genotype, GenotypeError, resolve_genotype
from .network import AUX_INPUT_SIZE, EvalNetwork
from .norms import without_affine
from .retrain_module import RetrainModule
from .search_module import SearchModule
from .shapes import COVERING_GENOTYPE, check_network, check_supernet, network_slots, supernet_slots
from .supernet import SuperNet

__all__ = ["NasTask", "NAS"]

def _cfg(cfg: RunConfig) -> NasConfig:
    assert isinstance(cfg, NasConfig)
    return cfg


def fixed_genotype(cfg: NasConfig) -> tuple[str, Genotype] | None:
    """``(name, genotype)`` when the search is skipped, None when the genotype is searched."""
    return None if cfg.nas.genotype is None else resolve_genotype(cfg.nas.genotype)


class NasTask(Task):
    """DARTS with the norm under test: the declarations and the builders of the two stages.

    Example:
        >>> from tasks.nas.task import NAS
        >>> from tasks.runner.parse import parse_config
        >>> cfg = parse_config(NAS, ["--config", "configs/nas/quick.yaml", "--nas.order", "second"])
        >>> [s.name for s in NAS.stages(cfg)], NAS.coordinates(cfg)
        (['search', 'retrain'], {'order': 'second'})
    """

    name = "nas"
    config_class = NasConfig
    description = "DARTS: search a cell with the norm under test (first or second order), derive it, retrain it."
    grid_coordinates = {"order": "nas.order", "genotype": "nas.genotype"}
    batch_size_meaning = ("images per device in each search step from each training half (with nas.genotype: "
                          "in each retrain step)")

    # --- identity and declarations -----------------------------------------------------------
    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        return _cfg(cfg).data.name, "darts"

    def coordinates(self, cfg: RunConfig) -> dict[str, Any]:
        fixed = fixed_genotype(_cfg(cfg))
        if fixed is None:
            return {"order": _cfg(cfg).nas.order}
        name, genotype = fixed
        if name == "custom":
            name = "custom-" + hashlib.sha1(str(genotype).encode()).hexdigest()[:8]
        return {"genotype": name}

    def normalization_batch(self, cfg: RunConfig) -> int:
        cfg = _cfg(cfg)
        return cfg.retrain_batch_size if cfg.nas.genotype is not None else cfg.batch_size

    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        specs = [MetricSpec("test/acc", "test accuracy of the retrained network", primary=True)]
        if _cfg(cfg).nas.genotype is None:
            specs += [
                MetricSpec("search/val_acc", "supernet validation accuracy at the end of the search"),
                MetricSpec("num_skip_connects", "skip connections in the searched normal cell", "min", "count"),
                MetricSpec("search/alpha_entropy", "final alpha entropy (nats, mean over edges; uniform = 2.08)",
                           "min", ""),
                MetricSpec("search/wall_time_s", "search wall time", "min", "seconds"),
            ]
        specs += [MetricSpec("retrain/params_m", "parameters of the final network (millions, auxiliary head "
                                                 "excluded)", "min", "", kind="cost"),
                  MetricSpec("retrain/wall_time_s", "retrain wall time", "min", "seconds")]
        return tuple(specs)

    def selection(self, cfg: RunConfig) -> SelectionRule:
        return LAST  # DARTS reports the network at the end of its fixed schedule

    def protocol(self, cfg: RunConfig) -> dict[str, Any]:
        cfg = _cfg(cfg)
        if cfg.nas.genotype is not None:
            return {}
        s = cfg.search
        return {"supernet_affine": False,
                "retrain_batch": "search batch" if cfg.retrain.batch_size is None else cfg.retrain.batch_size,
                "retrain_norm": "norm under test" if cfg.retrain.norm is None else self._retrain_norm_spec(cfg),
                "arch_warmup": s.arch_warmup, "arch_lr_scaling": s.arch_lr_scaling,
                "arch_updates": "one per batch" if s.arch_update_batch is None
                else f"one per {s.arch_update_batch} alpha-half images"}

    @staticmethod
    def _retrain_norm_spec(cfg: NasConfig) -> str:
        return str(resolve_norm(cfg.retrain_norm).spec)

    def stages(self, cfg: RunConfig) -> tuple[Stage, ...]:
        cfg = _cfg(cfg)
        retrain = Stage("retrain", LAST, cfg.trainer.epochs, cfg.retrain_batch_size, max_steps=cfg.trainer.max_steps,
                        norm_batch=cfg.retrain_batch_size)
        if cfg.nas.genotype is not None:
            return (retrain,)
        search = Stage("search", LAST, cfg.search.epochs, 2 * cfg.batch_size, max_steps=cfg.search.max_steps,
                       optimizer_steps_per_batch=2, test=False, norm_batch=cfg.batch_size)
        return (search, retrain)

    # --- checks ---------------------------------------------------------------------------------
    def diagnostics_support(self, cfg: RunConfig) -> str | None:
        return ("nas is not supported yet: the probe pass needs one network and one training set, and the DARTS search "
                "trains a supernet on half the data while the retrain stage trains another network (run classification "
                "or adversarial with diagnostics)")

    def compile_support(self, cfg: RunConfig) -> str | None:
        return ("nas is not supported: the DARTS search takes its architecture step through "
                "torch.func.functional_call with virtual weights (manual optimization), which is not verified "
                "under torch.compile")

    def validate(self, cfg: RunConfig) -> None:
        cfg = _cfg(cfg)
        data = cfg.data
        usable = [name for name, info in DATASETS.items() if info.load_tensors is not None]
        if data.name not in usable:
            raise ConfigError(f"data.name: {data.name!r} is not a data set the NAS task can use"
                              f"{suggest(data.name, usable)}; available: {', '.join(usable)}")
        info = get_dataset_info(data.name)
        if data.pad_to and data.pad_to < info.image_size:
            raise ConfigError(f"data.pad_to={data.pad_to} is smaller than the {info.image_size}x{info.image_size} "
                              f"{data.name} images; use 0 (no padding) or a size >= {info.image_size}")
        size = padded_size(data, info)
        if size % 4:
            raise ConfigError(f"{size}x{size} inputs cannot pass the two reduction cells (FactorizedReduce halves "
                              "even sizes only, twice); pad them to a multiple of 4 with data.pad_to (e.g. 32)")
        if cfg.retrain.auxiliary_weight > 0 and size != 4 * AUX_INPUT_SIZE:
            raise ConfigError(f"retrain.auxiliary_weight={cfg.retrain.auxiliary_weight} with {size}x{size} inputs: "
                              f"DARTS' auxiliary head needs {AUX_INPUT_SIZE}x{AUX_INPUT_SIZE} maps after two reductions "
                              f"(32x32 inputs); set data.pad_to 32 or retrain.auxiliary_weight 0")
        for section in ("search", "retrain"):
            channels = getattr(cfg, section).channels
            if channels % 2:
                raise ConfigError(f"{section}.channels={channels} must be even: FactorizedReduce concatenates two "
                                  "C/2 halves")
        try:
            fixed = fixed_genotype(cfg)
        except GenotypeError as exc:
            raise ConfigError(f"nas.genotype: {exc}") from None
        if cfg.retrain.norm is not None:
            if fixed is not None:
                raise ConfigError(f"retrain.norm={cfg.retrain.norm!r} with nas.genotype={cfg.nas.genotype!r}: without "
                                  "a search nothing would use the norm under test; set norm instead")
            try:
                resolve_norm(cfg.retrain.norm)
            except NormSpecError as exc:
                raise ConfigError(f"retrain.norm: {exc}") from None
        check_batch_statistics(resolve_norm(cfg.retrain_norm), cfg.retrain_batch_size)
        if fixed is None:
            self._validate_search(cfg)

    def _validate_search(self, cfg: NasConfig) -> None:
        if world_size_of(cfg) > 1:
            raise ConfigError(f"the DARTS search runs on one device (it asks for {world_size_of(cfg)}): its two "
                              "optimizer steps per batch and extra forwards are not synchronized across processes; "
                              "use trainer.devices 1, or retrain a fixed cell with nas.genotype")
        try:
            accumulation_batches(cfg.batch_size, cfg.search.arch_update_batch)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if cfg.trainer.precision not in ("32-true", "32", "64-true"):
            raise ConfigError(f"trainer.precision={cfg.trainer.precision}: the search computes its architecture "
                              "gradient (finite differences in second order) in full precision; use 32-true")

    def locate_data(self, cfg: RunConfig) -> None:
        cfg = _cfg(cfg)
        locate_dataset(cfg.data.name, cfg.data.root, cfg.data.download)

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        cfg = _cfg(cfg)
        info = get_dataset_info(cfg.data.name)
        size = padded_size(cfg.data, info)
        return (info.channels, size, size)

    def _supernet(self, cfg: NasConfig) -> SuperNet:
        info = get_dataset_info(cfg.data.name)
        return SuperNet(cfg.search.channels, info.num_classes, cfg.search.layers, str(cfg.norm), info.channels,
                        weight_standardization=cfg.model.weight_standardization)

    def _network(self, cfg: NasConfig, genotype: Genotype) -> EvalNetwork:
        info = get_dataset_info(cfg.data.name)
        return EvalNetwork(genotype, cfg.retrain.channels, info.num_classes, cfg.retrain.layers, cfg.retrain_norm,
                           info.channels, auxiliary=cfg.retrain.auxiliary_weight > 0,
                           weight_standardization=cfg.model.weight_standardization)

    def build_network(self, cfg: RunConfig) -> nn.Module:
        cfg = _cfg(cfg)
        fixed = fixed_genotype(cfg)
        return self._supernet(cfg) if fixed is None else self._network(cfg, fixed[1])

    def dry_run(self, cfg: RunConfig) -> None:
        """Every norm slot of the supernet (when searching) and of the final network, checked at its input shape.

        Without a fixed cell the final network is traced with a cell holding every op, so a G that fits the
        supernet but not the 20-cell network is refused before the search, not after it (see shapes.py)."""
        cfg = _cfg(cfg)
        info = get_dataset_info(cfg.data.name)
        channels, size, _ = self.input_shape(cfg)
        fixed = fixed_genotype(cfg)
        genotype = COVERING_GENOTYPE if fixed is None else fixed[1]
        s, r = cfg.search, cfg.retrain
        inputs = f"on {channels}x{size}x{size} {cfg.data.name} inputs"
        try:
            if fixed is None:
                where = f"DARTS supernet ({s.layers} cells, C={s.channels}, ops with {without_affine(cfg.norm)}) {inputs}"
                check_supernet(cfg.norm, supernet_slots(s.channels, s.layers, info.num_classes, channels, size))
            final_norm = "" if r.norm is None else f", retrain.norm {r.norm}"
            where = f"DARTS network ({r.layers} cells, C={r.channels}{final_norm}) {inputs}"
            check_network(cfg.retrain_norm, network_slots(str(genotype), r.channels, r.layers, info.num_classes,
                                                          channels, size, r.auxiliary_weight > 0))
        except NormSpecError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    # --- building ---------------------------------------------------------------------------------
    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]
              ) -> tuple[L.LightningModule, L.LightningDataModule]:
        cfg = _cfg(cfg)
        info = get_dataset_info(cfg.data.name)
        if stage.name == "search":
            s = cfg.search
            scale = cfg.batch_size / s.base_batch_size  # linear scaling of the weight learning rate
            datamodule = NasDataModule(cfg.data, cfg.batch_size, "search", s.train_portion, search_fraction=s.fraction)
            module: L.LightningModule = SearchModule(
                norm=str(cfg.norm), in_channels=info.channels, num_classes=info.num_classes, layers=s.layers,
                channels=s.channels, order=cfg.nas.order, fd_epsilon=cfg.nas.fd_epsilon, weight_lr=s.lr * scale,
                weight_lr_min=s.lr_min * scale, momentum=s.momentum, weight_decay=s.weight_decay, grad_clip=s.grad_clip,
                arch_lr=s.arch_lr, arch_betas=(s.arch_beta1, s.arch_beta2), arch_weight_decay=s.arch_weight_decay,
                max_batches=s.max_steps, weight_standardization=cfg.model.weight_standardization,
                arch_warmup=s.arch_warmup, arch_accumulate=accumulation_batches(cfg.batch_size, s.arch_update_batch),
                arch_lr_scaling=s.arch_lr_scaling, arch_reference_updates=s.arch_reference_updates)
            return module, datamodule
        r = cfg.retrain
        genotype = earlier["search"].outputs["genotype"] if "search" in earlier else str(fixed_genotype(cfg)[1])
        scale = cfg.retrain_batch_size * world_size_of(cfg) / r.base_batch_size
        datamodule = NasDataModule(cfg.data, cfg.retrain_batch_size, "retrain", cutout_length=r.cutout_length)
        module = RetrainModule(
            genotype=genotype, norm=cfg.retrain_norm, in_channels=info.channels, num_classes=info.num_classes,
            layers=r.layers, channels=r.channels, lr=r.lr * scale, lr_min=r.lr_min * scale, momentum=r.momentum,
            weight_decay=r.weight_decay, grad_clip=r.grad_clip, auxiliary_weight=r.auxiliary_weight,
            drop_path_prob=r.drop_path_prob, max_batches=cfg.trainer.max_steps,
            weight_standardization=cfg.model.weight_standardization)
        return module, datamodule

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        cfg = _cfg(cfg)
        run_dir = Path(module.trainer.default_root_dir)
        label = resolve_norm(cfg.norm).label
        if stage.name == "search":
            assert isinstance(module, SearchModule)
            genotype = module.net.genotype()
            draw_genotype(genotype, run_dir / GENOTYPE_FIGURE, f"{label}, {cfg.nas.order}-order search")
            schedule = module.schedule
            return {"genotype": str(genotype), "genotype_name": "searched", **module.alpha_movement(),
                    "search/arch_updates": schedule.updates, "search/arch_lr": schedule.lr,
                    "search/arch_warmup_batches": schedule.warmup_batches,
                    "num_skip_connects": genotype.num_skip_connects("normal"),
                    "num_skip_connects_reduce": genotype.num_skip_connects("reduce"),
                    "genotype_figure": GENOTYPE_FIGURE}
        assert isinstance(module, RetrainModule)
        outputs: dict[str, Any] = {"retrain/params_m": round(module.net.num_parameters() / 1e6, 6),
                                   "retrain/params_aux_m": round(module.net.num_parameters(auxiliary=True) / 1e6, 6)}
        fixed = fixed_genotype(cfg)
        if fixed is not None:
            name, genotype = fixed
            draw_genotype(genotype, run_dir / GENOTYPE_FIGURE, f"{label}, fixed cell {name}")
            outputs.update({"genotype": str(genotype), "genotype_name": name, "genotype_figure": GENOTYPE_FIGURE,
                            "num_skip_connects": genotype.num_skip_connects("normal"),
                            "num_skip_connects_reduce": genotype.num_skip_connects("reduce")})
        return outputs

    def record_extras(self, cfg: RunConfig, results: list[StageResult]) -> dict[str, Any]:
        cfg = _cfg(cfg)
        searching = cfg.nas.genotype is None
        extras: dict[str, Any] = {
            "network_norm": self._retrain_norm_spec(cfg),
            "norm_under_test_in": ("search and final network" if cfg.retrain.norm is None else "search only")
            if searching else "final network",
            "supernet_norm": str(without_affine(cfg.norm)) if searching else None,
            "search_order": cfg.nas.order if searching else None,
            "search_batch_size": cfg.batch_size if searching else None,
            "retrain_batch_size": cfg.retrain_batch_size,
            "search_epochs": cfg.search.epochs if searching else 0,
            "retrain_epochs": cfg.trainer.epochs,
        }
        for result in results:
            extras.setdefault(f"{result.name}/wall_time_s", round(result.wall_time_s, 3))
            extras.setdefault(f"{result.name}/steps", result.steps)
        return extras

    # --- tests ------------------------------------------------------------------------------------------
    def shrink(self, cfg: RunConfig) -> RunConfig:
        """Seconds per stage: 3-cell C=4 networks (no auxiliary head), batch 4, 3 search and 12 retrain batches
        per epoch, 2 epochs each, one torch thread."""
        cfg = _cfg(cfg)
        data = dataclasses.replace(cfg.data, val_size=32, fraction=0.0008, test_fraction=0.005, eval_batch_size=64,
                                   num_workers=0)  # 48 training images
        search = dataclasses.replace(cfg.search, epochs=min(cfg.search.epochs, 2), layers=3, channels=4,
                                     fraction=0.5)  # two halves of 12 images
        retrain = dataclasses.replace(cfg.retrain, layers=3, channels=4, auxiliary_weight=0.0, batch_size=None)
        trainer = dataclasses.replace(cfg.trainer, epochs=min(cfg.trainer.epochs, 2), log_every_n_steps=2,
                                      threads=1)
        return dataclasses.replace(cfg, batch_size=4, data=data, search=search, retrain=retrain, trainer=trainer)


NAS = NasTask()
