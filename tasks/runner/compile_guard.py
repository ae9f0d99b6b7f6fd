"""``trainer.compile`` never falls back to eager without saying so.

When a compiled function has been recompiled ``torch._dynamo.config.recompile_limit``
times (new shapes, new modes), torch logs one warning and runs that function eagerly
from then on. A run would then report "compiled" throughput and results for code
that was not compiled. Inside :func:`compile_fallback_fails` that fallback is an
error instead: the run stops with one line saying what happened and what to do,
its record says failed, and its checkpoints allow a resume without compile.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["CompileFallbackError", "compile_fallback_fails"]


class CompileFallbackError(RuntimeError):
    """torch.compile gave up on a function (recompile limit) and would have run it eagerly."""


@contextmanager
def compile_fallback_fails(enabled: bool = True) -> Iterator[None]:
    """While enabled, hitting torch.compile's recompile limit raises :class:`CompileFallbackError`."""
    if not enabled:
        yield
        return
    import torch._dynamo

    limit = torch._dynamo.config.recompile_limit
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        try:
            yield
        except torch._dynamo.exc.FailOnRecompileLimitHit as exc:
            raise CompileFallbackError(
                f"trainer.compile: torch.compile recompiled a function {limit} times (torch._dynamo.config."
                "recompile_limit) and would have run it eagerly from here on while the run claimed to be compiled; "
                "stopped instead. Rerun without trainer.compile (it resumes from the last checkpoint), or find what "
                "changes between calls with TORCH_LOGS=recompiles") from exc
