"""The spec grammar, the registry's metadata and its error messages."""

from __future__ import annotations

import pickle

import pytest
from torch import nn

import normlayers
from normlayers import (
    NormSpecError,
    create_norm,
    find_norm_layers,
    get_norm_entry,
    list_norms,
    norm_label,
    norm_layer,
    parse_norm_spec,
    resolve_norm,
)


def test_builtin_norms_in_table_order() -> None:
    assert list_norms()[:12] == ["bn", "in", "ln", "gn", "pn", "bgn", "brn", "frn", "evonorm_b0", "evonorm_s0", "sn", "none"]


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("bgn", "bgn:num_groups=1"),
        ("bgn:num_groups=1", "bgn:num_groups=1"),
        ("BGN: num_groups = 8 ", "bgn:num_groups=8"),
        ("bgn:eps=1e-3,num_groups=4", "bgn:eps=0.001,num_groups=4"),
        ("bn:momentum=none", "bn:momentum=none"),
        ("bn:momentum=0.1", "bn"),  # default value: same layer, same name
        ("gn", "gn:num_groups=32"),
        ("in:affine=false", "in:affine=false"),
        ("bgn:eps=1", "bgn:eps=1.0,num_groups=1"),  # an int where a float is expected is fine
    ],
)
def test_canonical_spec_strings(text: str, canonical: str) -> None:
    resolved = resolve_norm(text)
    assert str(resolved.spec) == canonical
    # the canonical string parses back to the same spec (CLI, YAML and labels agree)
    assert resolve_norm(str(resolved.spec)).spec == resolved.spec


def test_mapping_form_equals_string_form() -> None:
    assert resolve_norm({"name": "bgn", "num_groups": 4}).spec == resolve_norm("bgn:num_groups=4").spec
    assert resolve_norm({"name": "bgn:num_groups=4"}).spec == resolve_norm("bgn:num_groups=4").spec
    assert parse_norm_spec("bgn:num_groups=4").to_dict() == {"name": "bgn", "num_groups": 4}


@pytest.mark.parametrize(
    "spec, label",
    [
        ("bn", "BN"),
        ("bgn", "BGN (G=1)"),
        ("bgn:num_groups=16", "BGN (G=16)"),
        ("gn", "GN (G=32)"),
        ("bn:momentum=0.01", "BN (momentum=0.01)"),
        ("pn", "PN"),
        ("none", "None"),
    ],
)
def test_paper_labels(spec: str, label: str) -> None:
    assert norm_label(spec) == label


def test_metadata_answers_questions_without_isinstance() -> None:
    bgn, bn, gn, ln = (get_norm_entry(n) for n in ("bgn", "bn", "gn", "ln"))
    assert bgn.uses_batch_stats and bgn.keeps_running_stats and bgn.syncable and bgn.group_param == "num_groups"
    assert bn.uses_batch_stats and bn.syncable and bn.group_param is None
    assert not gn.uses_batch_stats and gn.group_param == "num_groups" and not gn.syncable
    assert not ln.uses_batch_stats and not ln.keeps_running_stats
    meta = bgn.metadata()
    assert meta["params"]["num_groups"] == 1 and meta["label"] == "BGN"


@pytest.mark.parametrize(
    "spec, fragments",
    [
        ("bgm", ["unknown norm 'bgm'", "did you mean 'bgn'", "bn, in, ln, gn, pn, bgn"]),
        ("bgn:groups=2", ["unknown argument 'groups'", "num_groups, elements, eps, momentum, affine, track_running_stats"]),
        ("bgn:num_groups=1.5", ["num_groups=1.5", "an integer >= 1"]),
        ("bgn:num_groups=0", ["num_groups=0", "an integer >= 1"]),
        ("bgn:num_groups=abc", ["num_groups=abc", "an integer"]),
        ("bn:momentum=2", ["momentum=2", "[0, 1]"]),
        ("bn:eps=-1", ["eps=-1", "a float > 0"]),
        ("in:affine=3", ["affine=3", "true or false"]),
        ("bgn:num_groups", ["not of the form key=value"]),
        ("bgn:", ["nothing after ':'"]),
        ("bgn:num_groups=1,num_groups=2", ["given twice"]),
        ("1bgn", ["not a layer name"]),
        ({"num_groups": 2}, ["needs a 'name' key"]),
        (3, ["has type int"]),
    ],
)
def test_bad_specs_raise_one_clear_error(spec, fragments) -> None:
    with pytest.raises(NormSpecError) as info:
        resolve_norm(spec)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("channels", [0, -3, 2.0, True])
def test_bad_channel_counts(channels) -> None:
    with pytest.raises(NormSpecError, match="num_channels must be a positive integer"):
        create_norm("bn", channels)


def test_create_norm_tags_modules_and_find_norm_layers_finds_them() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), create_norm("bgn:num_groups=2", 8), nn.ReLU(), create_norm("gn", 8))
    found = [(name, r.spec) for name, _, r in find_norm_layers(model)]
    assert [name for name, _ in found] == ["1", "3"]
    assert [str(spec) for _, spec in found] == ["bgn:num_groups=2", "gn:num_groups=32"]


def test_norm_layer_is_picklable_and_validates_early() -> None:
    factory = pickle.loads(pickle.dumps(norm_layer("bgn:num_groups=2")))
    layer = factory(16)
    assert isinstance(layer, normlayers.BatchGroupNorm) and layer.num_groups == 2
    with pytest.raises(NormSpecError):
        norm_layer("nope")


def test_register_custom_norm_is_usable_everywhere() -> None:
    entry = normlayers.NormEntry(name="test_identity", factory=lambda c: nn.Identity(), label="Id", description="x")
    normlayers.register_norm(entry)
    try:
        assert "test_identity" in list_norms()
        assert isinstance(create_norm("test_identity", 4), nn.Identity)
        with pytest.raises(ValueError, match="registered already"):
            normlayers.register_norm(entry)
    finally:
        normlayers.registry._REGISTRY.pop("test_identity")
