"""retrain.norm: the final network's norm, the norm under test by default, or one common evaluator (bn) so that a
sweep measures the norm's effect on the search alone; the record says which."""

from __future__ import annotations

from pathlib import Path

from normlayers import resolve_norm
from tasks.nas.genotypes import PUBLISHED
from tasks.nas.retrain_module import RetrainModule
from tasks.nas.search_module import SearchModule
from tasks.nas.task import NAS
from tasks.runner.parse import parse_config
from tasks.runner.task import StageResult

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "nas" / "quick.yaml")


def norm_entries(module) -> set[str]:
    """Registry names of every norm layer in ``module`` (the registry's own lookup, not class names)."""
    names = set()
    for layer in module.modules():
        spec = getattr(layer, "norm_spec", None)
        if spec is not None:
            names.add(resolve_norm(spec).entry.name)
    return names


def stages(tmp_path: Path, *args: str):
    cfg = NAS.shrink(parse_config(NAS, ["--config", QUICK, "--out_dir", str(tmp_path), *args], raise_errors=True))
    NAS.validate(cfg)
    NAS.dry_run(cfg)
    return cfg, {stage.name: stage for stage in NAS.stages(cfg)}


def test_a_bgn_search_with_retrain_norm_bn_builds_a_bn_final_network(tmp_path: Path) -> None:
    cfg, by_name = stages(tmp_path, "--norm", "bgn:num_groups=2", "--retrain.norm", "bn")
    search, _ = NAS.build(cfg, by_name["search"], {})
    assert isinstance(search, SearchModule) and search.hparams.norm == "bgn:num_groups=2"
    earlier = {"search": StageResult("search", outputs={"genotype": str(PUBLISHED["DARTS_V2"])})}
    retrain, _ = NAS.build(cfg, by_name["retrain"], earlier)
    assert isinstance(retrain, RetrainModule) and retrain.hparams.norm == "bn"
    assert norm_entries(search.net) == {"bgn"} and norm_entries(retrain.net) == {"bn"}
    assert NAS.protocol(cfg)["retrain_norm"] == "bn"
    extras = NAS.record_extras(cfg, [])
    assert extras["network_norm"] == "bn" and extras["supernet_norm"] == "bgn:affine=false,num_groups=2"
    assert extras["norm_under_test_in"] == "search only"


def test_by_default_the_final_network_holds_the_norm_under_test(tmp_path: Path) -> None:
    cfg, by_name = stages(tmp_path, "--norm", "bgn:num_groups=2")
    earlier = {"search": StageResult("search", outputs={"genotype": str(PUBLISHED["DARTS_V2"])})}
    retrain, _ = NAS.build(cfg, by_name["retrain"], earlier)
    assert norm_entries(retrain.net) == {"bgn"} and NAS.protocol(cfg)["retrain_norm"] == "norm under test"
    extras = NAS.record_extras(cfg, [])
    assert extras["network_norm"] == "bgn:num_groups=2" and extras["norm_under_test_in"] == "search and final network"
