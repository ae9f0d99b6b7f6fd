"""DARTS' search space, networks and genotypes, checked against the paper's code and by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normlayers import find_norm_layers, list_norms, resolve_norm
from tasks.nas.data import cutout
from tasks.nas.genotypes import PRIMITIVES, PUBLISHED, GenotypeError, derive_genotype, parse_genotype, resolve_genotype
from tasks.nas.network import EvalNetwork, drop_path
from tasks.nas.norms import norm_factory
from tasks.nas.ops import DilConv, FactorizedReduce, SepConv, Zero, build_op
from tasks.nas.shapes import COVERING_GENOTYPE, network_slots, supernet_slots
from tasks.nas.supernet import ARCH_PARAMETER_NAMES, SuperNet

V2 = PUBLISHED["DARTS_V2"]


pytestmark = pytest.mark.usefixtures("one_thread")
EVERY_NORM = [*list_norms(), "bgn:num_groups=4", "gn:num_groups=2"]


def test_supernet_has_the_darts_search_space_and_parameter_count() -> None:
    net = SuperNet(channels=16, num_classes=10, layers=8, norm="bn", in_channels=3)
    # DARTS' train_search.py logs "param size = 1.930618MB" for this network (alphas are not counted)
    assert sum(p.numel() for p in net.weight_parameters()) == 1_930_618
    assert [cell.reduction for cell in net.cells] == [False, False, True, False, False, True, False, False]
    assert all(len(cell.edges) == 14 and all(len(e.ops) == 8 for e in cell.edges) for cell in net.cells)
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                          "dil_conv_3x3", "dil_conv_5x5")
    assert net.alphas_normal.shape == net.alphas_reduce.shape == (14, 8)
    assert {n for n, _ in net.named_parameters()} - {n for n, _ in net.named_weight_parameters()} == set(ARCH_PARAMETER_NAMES)


def test_published_darts_v2_cell_builds_the_papers_network() -> None:
    net = EvalNetwork(V2, channels=36, num_classes=10, layers=20, norm="bn", in_channels=3, auxiliary=True)
    # DARTS' train.py logs "param size = 3.349342MB" for DARTS_V2 (the auxiliary head is not counted)
    assert net.num_parameters() == 3_349_342
    assert [i for i, cell in enumerate(net.cells) if cell.reduction] == [6, 13] and net.aux_position == 13
    normal, reduce = net.cells[0], net.cells[6]
    assert [type(op).__name__ for op in normal.ops] == ["SepConv"] * 5 + ["Identity", "Identity", "DilConv"]
    assert normal.inputs == (0, 1, 0, 1, 1, 0, 0, 2) and normal.concat == (2, 3, 4, 5)
    assert [type(op).__name__ for op in reduce.ops] == ["MaxPool2d", "MaxPool2d", "Identity", "MaxPool2d",
                                                        "MaxPool2d", "Identity", "Identity", "MaxPool2d"]
    assert [op.stride for op in reduce.ops if isinstance(op, nn.MaxPool2d)] == [2] * 5  # all on the inputs: stride 2
    assert isinstance(net.cells[7].preprocess0, FactorizedReduce)  # the cell after a reduction
    # drop-path never drops an identity edge
    assert normal.droppable == (True, True, True, True, True, False, False, True)


def test_genotype_text_round_trips_and_published_cells_are_the_papers() -> None:
    text = str(V2)
    assert text.startswith("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
                           "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
                           "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0)")
    assert parse_genotype(text) == V2 and parse_genotype(text.replace("[2, 3, 4, 5]", "range(2, 6)")) == V2
    assert V2.num_skip_connects("normal") == 2 and V2.num_skip_connects("reduce") == 3
    assert PUBLISHED["DARTS_V1"].normal[:2] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 0))
    assert resolve_genotype("DARTS_V1") == ("DARTS_V1", PUBLISHED["DARTS_V1"])


@pytest.mark.parametrize("text, message", [
    ("DARTS_V3", "unknown genotype 'DARTS_V3' (did you mean 'DARTS_V2'?)"),
    (str(V2).replace("dil_conv_3x3", "conv_7x7"), "unknown op 'conv_7x7'"),
    (str(V2).replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "node 3 takes input 5; it may take 0..4"),
    (str(V2).replace("('dil_conv_3x3', 2)", "('none', 2)"), "unknown op 'none'"),
    (str(V2).replace("normal_concat=[2, 3, 4, 5]", "normal_concat=__import__('os').getcwd()"), "is not a literal"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('sep_conv_3x3', 0)], reduce_concat=[2])",
     "1 edges; a cell has two edges per node"),
])
def test_bad_genotypes_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=None) as info:
        resolve_genotype(text)
    assert message in str(info.value)


def test_derivation_keeps_the_two_strongest_non_none_edges_per_node() -> None:
    op = {name: i for i, name in enumerate(PRIMITIVES)}
    weights = torch.full((14, 8), 0.01)
    # node 0 (edges 0, 1): 'none' dominates edge 0 but is never chosen; its best real op is avg_pool
    weights[0, op["none"]], weights[0, op["avg_pool_3x3"]] = 0.9, 0.05
    weights[1, op["sep_conv_5x5"]] = 0.5
    # node 1 (edges 2, 3, 4 from inputs 0, 1, node 0): edges from input 1 and node 0 win
    weights[2, op["max_pool_3x3"]], weights[3, op["skip_connect"]], weights[4, op["dil_conv_3x3"]] = 0.2, 0.6, 0.4
    # node 2 (edges 5..8): a tie between inputs 0 and 2 keeps the lower input first, as sorted() does in DARTS
    weights[5, op["sep_conv_3x3"]], weights[7, op["skip_connect"]], weights[6, op["dil_conv_5x5"]] = 0.3, 0.3, 0.1
    # node 3 (edges 9..13): node 2 and input 1 (none is large on edge 9 but ignored)
    weights[9, op["none"]], weights[13, op["max_pool_3x3"]], weights[10, op["avg_pool_3x3"]] = 0.99, 0.7, 0.35
    genotype = derive_genotype(weights, weights)
    assert genotype.normal == (("sep_conv_5x5", 1), ("avg_pool_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 2),
                               ("sep_conv_3x3", 0), ("skip_connect", 2), ("max_pool_3x3", 4), ("avg_pool_3x3", 1))
    assert genotype.normal_concat == (2, 3, 4, 5) and genotype.num_skip_connects() == 2
    # the supernet derives through softmax(alpha): a large alpha is a large weight
    net = SuperNet(4, 10, 3, "bn", 1)
    with torch.no_grad():
        net.alphas_normal.copy_(torch.log(weights))
        net.alphas_reduce.zero_()
    assert net.genotype().normal == genotype.normal
    assert all(op != "none" for op, _ in net.genotype().reduce)


@pytest.mark.parametrize("norm", EVERY_NORM)
def test_every_registry_norm_works_affine_free_in_the_supernet(norm: str) -> None:
    net = SuperNet(channels=4, num_classes=10, layers=3, norm=norm, in_channels=1)
    layers = list(find_norm_layers(net))
    stem = [r for name, _, r in layers if name.startswith("stem.")]
    ops = [(m, r) for name, m, r in layers if not name.startswith("stem.")]
    entry = resolve_norm(norm).entry
    # 2 preprocessing norms per cell; per edge 8 (a norm after each pool, 2 per separable and 1 per dilated
    # convolution), plus the FactorizedReduce skip on the 8 stride-2 edges of each of the 2 reduction cells
    assert len(stem) == 1 and len(ops) == 3 * 2 + 3 * 14 * 8 + 2 * 8 == 358
    if any(p.name == "affine" for p in entry.params):
        assert stem[0].kwargs["affine"] is True
        # every op's norm ends the op: a built-in activation (FRN, EvoNorm) is off there
        off = {"apply_act": False} if entry.builtin_activation is not None else {}
        assert all(r.kwargs == {**resolve_norm(norm).kwargs, "affine": False, **off} for _, r in ops)
        # no learned scale in any op (SN's mixture logits are no affine)
        assert all(m.weight is None and m.bias is None for m, _ in ops)
        assert resolve_norm(net.supernet_norm).kwargs == {**resolve_norm(norm).kwargs, "affine": False}
    else:
        assert str(net.supernet_norm) == str(resolve_norm(norm).spec)  # 'none' has no affine argument
    x, y = torch.randn(2, 1, 16, 16), torch.tensor([1, 2])  # 16x16 passes the two reductions too
    loss = nn.functional.cross_entropy(net.train()(x), y)
    loss.backward()
    assert torch.isfinite(loss) and net.alphas_normal.grad is not None and net.alphas_normal.grad.abs().sum() > 0
    assert torch.isfinite(net.eval()(x)).all()


def test_factorized_reduce_normalizes_the_concatenated_halves_with_the_group_rules() -> None:
    fr = FactorizedReduce(8, 6, lambda c, activation=True: __import__("normlayers").create_norm("gn:num_groups=4", c))
    assert fr.norm.num_channels == 6 and fr.norm.num_groups == 3  # GN: the largest divisor of C=6 below 4
    assert fr(torch.randn(2, 8, 16, 16)).shape == (2, 6, 8, 8)
    with pytest.raises(ValueError, match="even number of output channels"):
        FactorizedReduce(8, 5, nn.BatchNorm2d)


BN = norm_factory("bn")  # channels -> norm, taking activation= like create_norm


@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_channels_and_strides_the_map(stride: int) -> None:
    x = torch.randn(2, 6, 8, 8)
    for name in PRIMITIVES:
        op = build_op(name, 6, stride, BN, norm_after_pool=True)
        assert op(x).shape == (2, 6, 8 // stride, 8 // stride), name
    assert isinstance(build_op("sep_conv_5x5", 6, 1, BN), SepConv)
    assert isinstance(build_op("dil_conv_5x5", 6, 1, BN)[1], nn.Conv2d)
    assert build_op("dil_conv_5x5", 6, 1, BN)[1].dilation == (2, 2)
    assert isinstance(build_op("dil_conv_3x3", 6, 1, BN), DilConv)
    assert torch.equal(Zero(stride)(x), torch.zeros(2, 6, 8 // stride, 8 // stride))


def test_drop_path_zeroes_whole_samples_and_keeps_the_mean() -> None:
    x = torch.ones(4000, 2, 1, 1)
    out = drop_path(x, 0.2)
    per_sample = out.view(4000, -1)
    assert set(per_sample[:, 0].unique().tolist()) <= {0.0, 1.25} and torch.equal(per_sample[:, 0], per_sample[:, 1])
    assert abs(out.mean().item() - 1.0) < 0.05
    assert drop_path(x, 0.0) is x


def test_cutout_zeroes_one_clipped_square_per_image() -> None:
    out = cutout(torch.ones(500, 3, 32, 32), 16)
    hole = out[:, 0] == 0
    assert torch.equal((out == 0).all(dim=1), hole) and torch.equal((out == 0).any(dim=1), hole)  # one hole, all channels
    sizes = hole.view(500, -1).sum(1)
    assert sizes.max() == 256 and sizes.min() >= 64  # 16x16 inside the image, at least 8x8 at a corner
    rows, cols = hole.any(dim=2).sum(1), hole.any(dim=1).sum(1)
    assert torch.equal(rows * cols, sizes) and rows.max() == cols.max() == 16  # a rectangle, clipped at the border


def test_the_dry_run_traces_the_shape_every_norm_slot_sees() -> None:
    def shapes_seen(net: nn.Module, x: torch.Tensor) -> dict[str, set]:
        seen: dict[str, set] = {"affine": set(), "ops": set()}
        for name, module, resolved in find_norm_layers(net):
            role = "ops" if resolved.kwargs.get("affine") is False else "affine"
            module.register_forward_hook(lambda m, args, out, role=role: seen[role].add(tuple(args[0].shape[1:])))
        net(x)
        return seen

    supernet = shapes_seen(SuperNet(4, 10, 3, "bgn:num_groups=2", 1).train(), torch.randn(2, 1, 32, 32))
    assert supernet_slots(4, 3, 10, 1, 32) == {role: tuple(sorted(s)) for role, s in supernet.items()}
    network = EvalNetwork(COVERING_GENOTYPE, 8, 10, 5, "bn", 1, auxiliary=True).train()
    seen = shapes_seen(network, torch.randn(2, 1, 32, 32))
    assert network_slots(str(COVERING_GENOTYPE), 8, 5, 10, 1, 32, True) == tuple(sorted(seen["affine"]))
    assert (768, 1, 1) in seen["affine"] and (128, 2, 2) in seen["affine"]  # the auxiliary head's slots
    # the covering cell has every slot shape of any cell, e.g. of DARTS_V2's network
    v2 = set(network_slots(str(V2), 8, 5, 10, 1, 32, True))
    assert v2 <= set(network_slots(str(COVERING_GENOTYPE), 8, 5, 10, 1, 32, True))
