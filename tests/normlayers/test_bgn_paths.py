"""BGN's train paths (normlayers.bgn_paths) and its native CPU kernel (normlayers.native).

tests/normlayers/test_bgn.py runs the layer's behavioural tests once per path on small
layouts; here every path is held to the definition on layouts that reach the native
kernel's other work splits (long groups cut into pieces, many samples per unit, inputs
large enough for a parallel region), and the choice rule, the fallback without the
kernel, NORMLAYERS_NATIVE=0 and the build cache are checked. Nothing here compiles the
kernel a second time: the first test that needs it builds it into the cache (or loads
it from there), and the cache tests use a temporary directory with a fake library.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import norm_reference as ref
import pytest
import torch
import torch.nn.functional as F

import normlayers.bgn_paths as bgn_paths
from normlayers import BatchGroupNorm, create_norm, native
from normlayers.bgn_paths import TRAIN_PATHS, TWO_PHASE_MIN_NUMEL, choose_train_path, forced_train_path

REPO = Path(__file__).resolve().parents[2]

# (shape, G): long groups (6400 values: the kernel cuts them into pieces), short groups over a
# large batch (many samples per unit), segments crossing channels, and 131k elements (parallel).
KERNEL_LAYOUTS = [
    ((3, 8, 40, 40), 2),
    ((64, 6, 2, 2), 3),
    ((4, 6, 5, 5), 10),
    ((8, 16, 32, 32), 4),
    ((5, 7), 1),
]


@pytest.fixture(params=TRAIN_PATHS)
def path(request) -> Iterator[str]:
    with forced_train_path(request.param):
        yield request.param


@pytest.fixture
def fresh_native(monkeypatch) -> Iterator[None]:
    """A process state in which the kernel has not been looked for yet (restored afterwards)."""
    monkeypatch.setattr(native, "_state", {"ops": None, "tried": False, "error": None})
    yield


def _layer(channels: int, groups: int, dtype=torch.double, **kwargs) -> BatchGroupNorm:
    layer = create_norm({"name": "bgn", "num_groups": groups, **kwargs}, channels).to(dtype)
    with torch.no_grad():
        if layer.weight is not None:
            layer.weight.normal_()
            layer.bias.normal_()
    return layer


def _grads(y, inputs, grad):
    return torch.autograd.grad(y, inputs, grad)


def test_native_kernel_is_available_here() -> None:
    """The kernel builds on this machine (CI included): the native path's tests below test it."""
    assert native.native_enabled(), "run the tests without NORMLAYERS_NATIVE=0"
    assert native.native_ops() is not None, native.status()
    x = torch.randn(2, 8, 4, 4)
    assert choose_train_path(x, 2, 8, synchronized=False) == "native"


@pytest.mark.parametrize("shape, groups", KERNEL_LAYOUTS)
def test_every_path_matches_the_definition_in_float64(shape, groups, path) -> None:
    layer = _layer(shape[1], groups, momentum=0.2)
    x = (torch.randn(*shape, dtype=torch.double) * 3 + 2).requires_grad_(True)
    y = layer(x)
    expected = ref.batch_group_norm(x, groups, layer.weight, layer.bias)
    torch.testing.assert_close(y, expected)
    grad = torch.randn_like(y)
    inputs = (x, layer.weight, layer.bias)
    for got, want in zip(_grads(y, inputs, grad), _grads(expected, inputs, grad)):
        torch.testing.assert_close(got, want)
    mean, var = ref.bgn_batch_stats(x.detach(), groups)
    count = x.numel() // groups
    torch.testing.assert_close(layer.running_mean, 0.2 * mean)
    torch.testing.assert_close(layer.running_var, 0.8 + 0.2 * var * count / (count - 1))
    assert layer.stats.num_batches_tracked.item() == 1


@pytest.mark.parametrize("shape, groups", [((3, 6, 4, 4), 3), ((4, 6, 5, 5), 10)])
def test_second_order_gradients_of_every_path(shape, groups, path) -> None:
    layer = _layer(shape[1], groups)
    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)

    def outer(fn):
        inner = torch.autograd.grad((fn(x) ** 3).sum(), (x, layer.weight, layer.bias), create_graph=True)
        return torch.autograd.grad(sum(g.square().sum() for g in inner), (x, layer.weight, layer.bias))

    got = outer(layer)
    want = outer(lambda t: ref.batch_group_norm(t, groups, layer.weight, layer.bias))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_momentum_none_and_without_running_stats(path) -> None:
    layer = _layer(6, 3, momentum=None)
    batches = [torch.randn(4, 6, 3, 3, dtype=torch.double) * (i + 1) + i for i in range(3)]
    for x in batches:
        layer(x)
    stats = [ref.bgn_batch_stats(x, 3) for x in batches]
    count = batches[0].numel() // 3
    torch.testing.assert_close(layer.running_mean, torch.stack([m for m, _ in stats]).mean(0))
    torch.testing.assert_close(layer.running_var, torch.stack([v * count / (count - 1) for _, v in stats]).mean(0))
    untracked = _layer(6, 3, track_running_stats=False)
    x = batches[0]
    torch.testing.assert_close(untracked(x), ref.batch_group_norm(x, 3, untracked.weight, untracked.bias))


def test_without_affine_and_with_partial_gradients(path) -> None:
    layer = _layer(6, 2, affine=False)
    x = torch.randn(4, 6, 3, 3, dtype=torch.double, requires_grad=True)
    y = layer(x)
    expected = ref.batch_group_norm(x, 2)
    torch.testing.assert_close(y, expected)
    grad = torch.randn_like(y)
    torch.testing.assert_close(_grads(y, x, grad)[0], _grads(expected, x, grad)[0])
    # gradients for the parameters only (the input needs none)
    layer = _layer(6, 2)
    x = torch.randn(4, 6, 3, 3, dtype=torch.double)
    y = layer(x)
    expected = ref.batch_group_norm(x, 2, layer.weight, layer.bias)
    inputs = (layer.weight, layer.bias)
    for got, want in zip(_grads(y, inputs, grad), _grads(expected, inputs, grad)):
        torch.testing.assert_close(got, want)


def test_float32_paths_agree_with_the_float64_definition(path) -> None:
    layer = _layer(16, 4, dtype=torch.float32)
    x = (torch.randn(8, 16, 16, 16, dtype=torch.double) * 5 + 100).requires_grad_(True)  # offset: no cancellation
    y = layer(x.detach().float().requires_grad_(True))
    expected = ref.batch_group_norm(x, 4, layer.weight.double(), layer.bias.double())
    torch.testing.assert_close(y.double(), expected, atol=1e-4, rtol=1e-4)


def test_constant_groups_are_finite(path) -> None:
    layer = BatchGroupNorm(6, num_groups=3)
    x = torch.zeros(3, 6, 4, 4, requires_grad=True)
    with torch.no_grad():
        x[:, 4:] = torch.randn(3, 2, 4, 4)
    y = layer(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all() and torch.isfinite(layer.running_var).all()
    assert layer.running_var[0].item() == pytest.approx(0.9)


def test_groups_equal_channels_is_f_batch_norm_on_every_path(path) -> None:
    """G = C bypasses the path choice: the output and running statistics are F.batch_norm's, bit for bit."""
    layer = _layer(8, 8, dtype=torch.float32, momentum=0.3)
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    rm, rv = torch.zeros(8), torch.ones(8)
    y = layer(x)
    want = F.batch_norm(x, rm, rv, layer.weight, layer.bias, True, 0.3, layer.eps)
    assert torch.equal(y, want)
    assert torch.equal(layer.running_mean, rm) and torch.equal(layer.running_var, rv)
    grad = torch.randn_like(y)
    for a, b in zip(_grads(y, (x, layer.weight), grad), _grads(want, (x, layer.weight), grad)):
        assert torch.equal(a, b)


def test_native_path_under_no_grad_and_inference_mode() -> None:
    layer = _layer(6, 3)
    x = torch.randn(4, 6, 3, 3, dtype=torch.double)
    expected = ref.batch_group_norm(x, 3, layer.weight, layer.bias)
    with forced_train_path("native"):
        with torch.no_grad():
            torch.testing.assert_close(layer(x), expected)
        with torch.inference_mode():
            torch.testing.assert_close(layer(x), expected)
    assert layer.stats.num_batches_tracked.item() == 2


def test_noop_twin_has_the_call_structure_and_computes_nothing() -> None:
    layer = _layer(8, 2, dtype=torch.float32)
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    with forced_train_path("noop"):
        y = layer(x)
    assert y.shape == x.shape and y.grad_fn is not None
    y.backward(torch.ones_like(y))
    assert x.grad.shape == x.shape and layer.weight.grad.shape == (8,)


def test_choice_rule() -> None:
    small = torch.randn(2, 8, 4, 4)
    large = torch.randn(TWO_PHASE_MIN_NUMEL // 64, 8, 4, 2)
    assert choose_train_path(small, 2, 8, synchronized=True) == "two_phase"
    assert choose_train_path(small, 8, 8, synchronized=False) == "batch_norm"
    assert choose_train_path(small, 2, 8, synchronized=False) == "native"
    assert choose_train_path(large, 2, 8, synchronized=False) == "native"
    # what the kernel does not take: the eager rule by element count
    assert choose_train_path(small.to(memory_format=torch.channels_last), 2, 8, False) == "composite"
    assert choose_train_path(large.to(memory_format=torch.channels_last), 2, 8, False) == "two_phase"
    assert choose_train_path(small.bfloat16(), 2, 8, False) == "composite"
    with forced_train_path("eager"):
        assert choose_train_path(small, 2, 8, False) == "composite"
        assert choose_train_path(large, 2, 8, False) == "two_phase"
    with forced_train_path("plain"):
        assert choose_train_path(small, 2, 8, False) == "plain"
        assert choose_train_path(small, 8, 8, False) == "batch_norm"
    with pytest.raises(ValueError, match="unknown BGN train path"):
        with forced_train_path("fast"):
            pass


def test_traced_by_torch_compile_takes_the_plain_path(monkeypatch) -> None:
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert choose_train_path(torch.randn(2, 8, 4, 4), 2, 8, synchronized=False) == "plain"


def test_channels_last_input_matches_the_definition() -> None:
    layer = _layer(8, 4)
    x = torch.randn(3, 8, 4, 4, dtype=torch.double).to(memory_format=torch.channels_last).requires_grad_(True)
    y = layer(x)
    expected = ref.batch_group_norm(x, 4, layer.weight, layer.bias)
    torch.testing.assert_close(y, expected)
    grad = torch.randn_like(y)
    torch.testing.assert_close(_grads(y, x, grad)[0], _grads(expected, x, grad)[0])


def test_without_the_kernel_the_eager_paths_run(monkeypatch) -> None:
    monkeypatch.setattr(bgn_paths, "native_ops", lambda: None)
    small, large = torch.randn(2, 8, 4, 4, dtype=torch.double), torch.randn(64, 8, 32, 32, dtype=torch.double)
    assert choose_train_path(small, 2, 8, False) == "composite"
    assert choose_train_path(large, 2, 8, False) == "two_phase"
    for x in (small, large):
        layer = _layer(8, 2)
        torch.testing.assert_close(layer(x), ref.batch_group_norm(x, 2, layer.weight, layer.bias))
        mean, _ = ref.bgn_batch_stats(x, 2)
        torch.testing.assert_close(layer.running_mean, 0.1 * mean)
    with pytest.raises(RuntimeError, match="native kernel is unavailable"):
        with forced_train_path("native"):
            pass


def test_normlayers_native_0_turns_the_kernel_off(monkeypatch, fresh_native, recwarn) -> None:
    monkeypatch.setenv("NORMLAYERS_NATIVE", "0")
    assert not native.native_enabled()
    assert native.native_ops() is None
    assert "off" in native.status()
    x = torch.randn(2, 8, 4, 4, dtype=torch.double)
    assert choose_train_path(x, 2, 8, False) == "composite"
    layer = _layer(8, 2)
    torch.testing.assert_close(layer(x), ref.batch_group_norm(x, 2, layer.weight, layer.bias))
    assert not [w for w in recwarn if "native" in str(w.message)]  # turned off on purpose: no warning


def test_normlayers_native_0_in_a_fresh_process() -> None:
    code = ("import torch; from normlayers import native, create_norm; from normlayers.bgn_paths import choose_train_path; "
            "x = torch.randn(2, 8, 4, 4); create_norm('bgn:num_groups=2', 8)(x); "
            "print(native._state['tried'], native.native_ops(), choose_train_path(x, 2, 8, False))")
    env = {**os.environ, "NORMLAYERS_NATIVE": "0"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "None", "composite"]
    assert "normlayers" not in done.stderr  # no compile message, no warning


def test_a_failed_build_warns_once_and_falls_back(monkeypatch, fresh_native, tmp_path) -> None:
    monkeypatch.setenv("NORMLAYERS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="native CPU kernel is unavailable"):
        assert native.native_ops() is None
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert native.native_ops() is None  # no second attempt, no second warning
    assert not again
    assert "no C++ compiler" in native.status()
    x = torch.randn(2, 8, 4, 4, dtype=torch.double)
    layer = _layer(8, 2)
    torch.testing.assert_close(layer(x), ref.batch_group_norm(x, 2, layer.weight, layer.bias))


def test_cache_is_keyed_by_source_and_a_cached_library_is_not_rebuilt(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NORMLAYERS_CACHE_DIR", str(tmp_path / "cache"))
    path = native.library_path()
    assert path.parent.parent == tmp_path / "cache" and path.name == "bgn_cpu.so"
    assert native.library_path() == path  # deterministic: every process and test finds the same build
    edited = tmp_path / "bgn_cpu.cpp"
    edited.write_text(native.SOURCE.read_text() + "\n// edited\n")
    monkeypatch.setattr(native, "SOURCE", edited)
    assert native.library_path() != path  # an edited kernel gets its own build
    target = native.library_path()
    target.parent.mkdir(parents=True)
    target.write_bytes(b"built before")

    def no_compiler(*args, **kwargs):
        raise AssertionError("a cached build must not be compiled again")

    monkeypatch.setattr(native.subprocess, "run", no_compiler)
    assert native.build() == target


def test_cache_defaults_to_xdg_then_home(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("NORMLAYERS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native.library_path().parent.parent == tmp_path / "xdg" / "normlayers"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert native.library_path().parent.parent == tmp_path / "home" / ".cache" / "normlayers"
