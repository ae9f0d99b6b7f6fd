"""trainer.compile never silently falls back to eager: hitting the recompile limit stops the run with one line."""

from __future__ import annotations

import pytest
import torch

from tasks.runner.compile_guard import CompileFallbackError, compile_fallback_fails


def _compiled_affine() -> torch.nn.Module:
    torch.compiler.reset()
    module = torch.nn.Linear(3, 2)
    module.compile(dynamic=False, backend="eager")  # dynamo's guards and limits without inductor's C++ build
    return module


def test_recompile_limit_is_an_error_inside_the_guard() -> None:
    module = _compiled_affine()
    with torch._dynamo.config.patch(recompile_limit=1):
        with pytest.raises(CompileFallbackError, match="recompiled a function 1 times.*without trainer.compile"):
            with compile_fallback_fails():
                module(torch.randn(2, 3))
                module(torch.randn(5, 3))  # a new static shape: a second compile, over the limit


def test_without_the_guard_torch_falls_back_to_eager_silently() -> None:
    # What the guard exists for: torch's own behaviour keeps computing, eagerly, with only a log warning.
    module = _compiled_affine()
    with torch._dynamo.config.patch(recompile_limit=1):
        with compile_fallback_fails(enabled=False):
            module(torch.randn(2, 3))
            out = module(torch.randn(5, 3))
    assert out.shape == (5, 2)
