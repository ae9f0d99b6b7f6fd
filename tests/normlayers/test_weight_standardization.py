"""Weight Standardization: the formula, its gradient, and a converted model that still looks like the plain one."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normlayers import WSConv2d, is_standardized, standardize_convolutions
from normlayers.weight_standardization import WS_EPS, standardize_weight


def _plain_standardized(weight: torch.Tensor, eps: float = WS_EPS) -> torch.Tensor:
    """Per output channel, written out: mean and biased variance over (in, kh, kw)."""
    out = torch.empty_like(weight)
    for o in range(weight.shape[0]):
        w = weight[o]
        mean = w.sum() / w.numel()
        var = ((w - mean) ** 2).sum() / w.numel()
        out[o] = (w - mean) / torch.sqrt(var + eps)
    return out


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(6, 4, 1, stride=2),
                         nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.LazyLinear(2))


@pytest.mark.parametrize("groups,bias", [(1, True), (1, False), (2, True)])
def test_output_is_the_convolution_with_the_plainly_standardized_weight(groups: int, bias: bool) -> None:
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=groups, bias=bias)
    x = torch.randn(2, 4, 9, 9)
    expected = F.conv2d(x, _plain_standardized(conv.weight.detach()), conv.bias, 2, 1, 1, groups)
    standardize_convolutions(conv)
    assert isinstance(conv, WSConv2d)
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    w = standardize_weight(conv.weight.detach()).flatten(1)
    torch.testing.assert_close(w.mean(1), torch.zeros(6), atol=1e-6, rtol=0)
    torch.testing.assert_close(w.var(1, correction=0), torch.ones(6), atol=1e-2, rtol=0)  # eps aside


def test_gradients_pass_gradcheck_in_float64() -> None:
    conv = WSConv2d(2, 3, 3, padding=1).double()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    w = conv.weight.detach().clone().requires_grad_(True)
    b = conv.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, w, b: conv._conv_forward(x, w, b), (x, w, b))
    assert torch.autograd.gradcheck(lambda w: standardize_weight(w, 1e-5), (w,))


def test_conversion_keeps_parameter_names_values_and_checkpoints() -> None:
    torch.manual_seed(0)
    plain = _net()
    plain(torch.zeros(1, 3, 8, 8))  # materialize the lazy linear layer
    keys = list(plain.state_dict())
    ws = standardize_convolutions(copy.deepcopy(plain))
    assert is_standardized(ws) and not is_standardized(plain)
    assert list(ws.state_dict()) == keys
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), ws.state_dict().values()))
    buffer = io.BytesIO()
    torch.save(ws.state_dict(), buffer)
    buffer.seek(0)
    again = standardize_convolutions(_net())
    again(torch.zeros(1, 3, 8, 8))
    again.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(again(x), ws(x))
    torch.testing.assert_close(pickle.loads(pickle.dumps(ws))(x), ws(x))
    assert standardize_convolutions(ws) is ws and is_standardized(ws)  # twice is harmless


def test_functional_call_standardizes_the_weights_it_is_given() -> None:
    net = standardize_convolutions(nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten()))
    x = torch.randn(2, 2, 5, 5)
    other = {"0.weight": torch.randn(3, 2, 3, 3), "0.bias": torch.zeros(3)}
    got = torch.func.functional_call(net, other, (x,))
    torch.testing.assert_close(got, F.conv2d(x, _plain_standardized(other["0.weight"])).flatten(1))


def test_learn2learn_clone_adapts_the_standardized_network() -> None:
    import learn2learn as l2l
    net = standardize_convolutions(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 9, 2)))
    maml = l2l.algorithms.MAML(net, lr=0.1)
    learner = maml.clone()
    assert isinstance(learner.module[0], WSConv2d)
    x, y = torch.randn(4, 1, 5, 5), torch.tensor([0, 1, 0, 1])
    before = learner(x)
    learner.adapt(F.cross_entropy(learner(x), y))
    assert not torch.allclose(learner(x), before)
    F.cross_entropy(learner(x), y).backward()  # the meta-gradient reaches the original weight through the clone
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_refuses_what_it_cannot_standardize() -> None:
    with pytest.raises(ValueError, match="would zero it"):
        standardize_convolutions(nn.Conv2d(4, 4, 1, groups=4))

    class Custom(nn.Conv2d):
        pass

    with pytest.raises(TypeError, match="Custom"):
        standardize_convolutions(nn.Sequential(Custom(2, 2, 3)))


def test_torch_compile_traces_the_standardization_in_one_graph() -> None:
    net = standardize_convolutions(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)))
    x = torch.randn(2, 3, 8, 8)
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)  # no C++ compiler needed
    torch.testing.assert_close(compiled(x), net(x))
    compiled(x).sum().backward()
    assert net[0].weight.grad is not None
