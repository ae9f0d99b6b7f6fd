"""The new entries' registry facts: order, labels, one-line refusals, and no silent synchronization."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normlayers import NormSpecError, convert_sync_norms, create_norm, get_norm_entry, list_norms, norm_label, revert_sync_norms

NEW = ["brn", "frn", "evonorm_b0", "evonorm_s0", "sn"]


def test_new_entries_sit_between_bgn_and_none_in_table_order() -> None:
    names = list_norms()
    assert names[names.index("bgn") + 1: names.index("none")] == NEW


@pytest.mark.parametrize("name, label, batch, running, activation", [
    ("brn", "BRN", True, True, None),
    ("frn", "FRN", False, False, "TLU"),
    ("evonorm_b0", "EvoNorm-B0", True, True, "EvoNorm-B0"),
    ("evonorm_s0", "EvoNorm-S0 (G=32)", False, False, "Swish"),
    ("sn", "SN", True, True, None),
])
def test_metadata(name: str, label: str, batch: bool, running: bool, activation: str | None) -> None:
    entry = get_norm_entry(name)
    assert norm_label(name) == label and entry.description
    assert (entry.uses_batch_stats, entry.keeps_running_stats, entry.syncable) == (batch, running, False)
    assert entry.builtin_activation == activation
    assert entry.param("affine").default is True


def test_pooling_roles() -> None:
    assert [p.role for p in get_norm_entry("sn").pooling] == ["IN", "LN", "BN"]
    assert [(p.role, p.over_batch) for p in get_norm_entry("evonorm_b0").pooling] == [("batch", True), ("instance", False)]
    assert get_norm_entry("evonorm_s0").pooling[0].groups == "num_groups"


@pytest.mark.parametrize("spec, message", [
    ("brn:r_max=0.5", "norm 'brn:r_max=0.5': r_max=0.5 is not allowed; r_max must be a float >= 1"),
    ("brn:d_max=-1", "norm 'brn:d_max=-1': d_max=-1 is not allowed; d_max must be a float >= 0"),
    ("brn:ramp_steps=-1", "norm 'brn:ramp_steps=-1': ramp_steps=-1 is not allowed; ramp_steps must be an integer >= 0"),
    ("brn:ramp_steps=2.5", "ramp_steps=2.5 is not allowed; ramp_steps must be an integer >= 0"),
    ("brn:momentum=0", "momentum=0 is not allowed; momentum must be a float in (0, 1]"),
    ("brn:momentum=none", "momentum=none is not allowed; momentum must be a float in (0, 1]"),
    ("brn:eps=0", "norm 'brn:eps=0': eps=0 is not allowed; eps must be a float > 0"),
    ("frn:eps=0", "norm 'frn:eps=0': eps=0 is not allowed; eps must be a float > 0"),
    ("frn:learnable_eps=1", "learnable_eps=1 is not allowed; learnable_eps must be true or false"),
    ("evonorm_b0:eps=-1e-5", "eps=-1e-05 is not allowed; eps must be a float > 0"),
    ("evonorm_b0:apply_act=maybe", "apply_act=maybe is not allowed; apply_act must be true or false"),
    ("evonorm_s0:eps=0", "eps=0 is not allowed; eps must be a float > 0"),
    ("evonorm_s0:num_groups=0", "num_groups=0 is not allowed; num_groups must be an integer >= 1"),
    ("sn:eps=0", "eps=0 is not allowed; eps must be a float > 0"),
    ("sn:members=gn", "members=gn is not allowed; members must be a '+'-joined subset of in, ln, bn in that order"),
    ("sn:members=bn+in", "members=bn+in is not allowed; members must be a '+'-joined subset of in, ln, bn in that order"),
    ("sn:members=in+in", "members=in+in is not allowed"),
    ({"name": "sn", "members": ""}, "members= is not allowed; members must be a '+'-joined subset"),
    ("sn:members=none", "members=none is not allowed"),
    ("sn:apply_act=false", "unknown argument 'apply_act'; sn takes: members, eps, momentum, affine"),
])
def test_bad_arguments_are_refused_with_one_line(spec, message: str) -> None:
    with pytest.raises(NormSpecError) as info:
        create_norm(spec, 8)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_layers_refuse_bad_values_when_built_directly() -> None:
    from normlayers.batch_renorm import BatchRenorm
    from normlayers.switchable import SwitchableNorm

    for kwargs in ({"r_max": 0.9}, {"d_max": -0.1}, {"ramp_steps": -1}, {"eps": 0.0}):
        with pytest.raises(ValueError, match="BatchRenorm: need"):
            BatchRenorm(4, **kwargs)
    with pytest.raises(ValueError, match="members=''"):
        SwitchableNorm(4, members="")


def test_spec_canonical_forms() -> None:
    assert str(create_norm("sn:members=in+bn", 4).norm_spec) == "sn:members=in+bn"
    assert str(create_norm("sn:members=in+ln+bn", 4).norm_spec) == "sn"
    assert str(create_norm("evonorm_s0", 4).norm_spec) == "evonorm_s0:num_groups=32"
    assert norm_label("brn:r_max=2") == "BRN (r_max=2.0)"


def _model(spec: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), create_norm(spec, 8), nn.ReLU(), nn.Conv2d(8, 8, 3),
                         create_norm(spec, 8))


@pytest.mark.parametrize("spec", NEW)
def test_convert_sync_norms_leaves_the_new_layers_unchanged(spec: str) -> None:
    """syncable=False is true: no layer (or child) is a _BatchNorm that torch's conversion would swap for SyncBN."""
    model, twin = _model(spec), _model(spec)
    before = [type(m) for m in model.modules()]
    converted = convert_sync_norms(model)
    assert [type(m) for m in converted.modules()] == before
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in converted.modules())
    x = torch.randn(4, 3, 6, 6)
    torch.testing.assert_close(converted(x), twin(x))  # train mode: the same function and statistics updates
    torch.testing.assert_close(converted.eval()(x), twin.eval()(x))
    assert [type(m) for m in revert_sync_norms(converted).modules()] == before


@pytest.mark.parametrize("spec", ["frn", "evonorm_s0"])
def test_batch_independent_new_norms_are_the_same_in_train_and_eval(spec: str) -> None:
    layer = create_norm(spec, 8)
    x = torch.randn(4, 8, 6, 6)
    torch.testing.assert_close(layer.train()(x), layer.eval()(x))
    torch.testing.assert_close(layer(x[:1]), layer(x)[:1])
