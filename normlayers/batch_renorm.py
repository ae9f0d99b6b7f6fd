"""Batch renormalization (Ioffe, 2017): batch statistics in training, corrected toward the running ones.

In training, with per-channel batch mean and biased standard deviation μ_B,
σ_B (over N and the spatial axes) and the running estimates μ, σ = sqrt(running_var + eps)::

    y = (x - μ_B) / σ_B * r + d,    r = clip(σ_B / σ, 1/r_max, r_max),    d = clip((μ_B - μ) / σ, -d_max, d_max)

followed by the per-channel affine. r and d are constants for the gradient
(stop-gradient), so the gradient is BN's with the output rescaled; when no
clipping happens, y equals the inference-mode output (x - μ) / σ, which is the
point: training and inference compute the same function. r and d are computed
from the running statistics *before* this batch updates them. Eval mode uses
the running statistics, like BN.

**The ramp.** The limits start at r_max = 1, d_max = 0 (plain BN) and move
linearly to their final values over ``ramp_steps`` training steps; the
current step lives in the long buffer ``ramp_step`` (saved in checkpoints).
Who advances it is the attribute ``ramp_driver``:

- ``"forward"`` (default, for plain PyTorch use): every train-mode forward
  uses the current step, then advances it by one (except in a re-estimation
  pass, ``momentum=None``, see below);
- ``"external"``: forwards never touch it; the owner calls
  :meth:`BatchRenorm.set_ramp_step`. normbench's runs do this
  (``tasks/runner/ramp.py``) with the number of optimizer steps taken, because
  MAML's clones and DARTS' unrolled ``functional_call`` passes run extra
  train-mode forwards per optimizer step.

**Defaults.** r_max = 3 and d_max = 5 are the paper's final limits. The paper
held them at 1 and 0 for 5k steps and reached d_max = 5 at 25k and r_max = 3 at
40k steps (ImageNet, Inception-v3); one linear ramp cannot match both, and
``ramp_steps = 25000`` takes the earlier end point: d reaches its limit where
the paper's did and r a little sooner. Runs much shorter than that (the quick
profiles) stay close to BN, as the paper's first thousands of steps do.
``momentum = 0.01`` (torch's convention: new = (1 - m) * old + m * batch) rather
than BN's 0.1: r and d are corrections *toward* the running estimates, which
therefore should average many batches (about 100 here rather than 10) at the
small batches renormalization is for; the ramp gives them its first steps to
settle while the layer is still BN.

``affine``: a learned per-channel scale γ and shift β after renormalization
(false: none). ``momentum=None`` (never from a spec; set by statistics
re-estimation such as AdaBN, which also resets the statistics) means a
cumulative average: the running statistics are being rebuilt and are no
reference yet, so the layer then normalizes with batch statistics alone
(r = 1, d = 0), which is what BN does in that pass.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .running_stats import RunningStats, channel_affine, check_input

__all__ = ["BatchRenorm", "RampDriver"]

RampDriver = Literal["forward", "external"]


class BatchRenorm(RunningStats):
    """Batch renormalization for (N, C, *) inputs; see the module docstring for the ramp and defaults.

    Arguments:
        num_channels: C.
        r_max, d_max: final clipping limits (>= 1 and >= 0).
        ramp_steps: training steps over which the limits move from (1, 0) to (r_max, d_max); 0: no ramp.
        eps: added to the variances.
        momentum: running-average rate (torch's convention).
        affine: learned per-channel γ, β.

    Example:
        >>> layer = BatchRenorm(64, ramp_steps=1000)
        >>> layer.ramp_driver = "external"; layer.set_ramp_step(500)   # limits half way: r_max 2, d_max 2.5
    """

    def __init__(self, num_channels: int, r_max: float = 3.0, d_max: float = 5.0, ramp_steps: int = 25000,
                 eps: float = 1e-5, momentum: float | None = 0.01, affine: bool = True) -> None:
        super().__init__(num_channels, momentum)
        if r_max < 1 or d_max < 0 or ramp_steps < 0 or eps <= 0:
            raise ValueError(f"BatchRenorm: need r_max >= 1, d_max >= 0, ramp_steps >= 0, eps > 0 "
                             f"(got {r_max}, {d_max}, {ramp_steps}, {eps})")
        self.r_max, self.d_max, self.ramp_steps, self.eps, self.affine = r_max, d_max, ramp_steps, eps, affine
        channel_affine(self, num_channels, affine)
        self.register_buffer("ramp_step", torch.tensor(0, dtype=torch.long))
        self._ramp_driver: RampDriver = "forward"

    @property
    def ramp_driver(self) -> RampDriver:
        """``"forward"``: each train-mode forward advances ``ramp_step``; ``"external"``: only :meth:`set_ramp_step`."""
        return self._ramp_driver

    @ramp_driver.setter
    def ramp_driver(self, value: RampDriver) -> None:
        if value not in ("forward", "external"):
            raise ValueError(f"ramp_driver={value!r}; choose forward or external")
        self._ramp_driver = value

    @torch.no_grad()
    def set_ramp_step(self, step: int) -> None:
        """Set the training step the ramp is at (the runs' callback passes the optimizer steps taken)."""
        if step < 0:
            raise ValueError(f"ramp step {step} < 0")
        self.ramp_step.fill_(int(step))

    def ramp_limits(self) -> tuple[Tensor, Tensor]:
        """(r_max, d_max) at the current ``ramp_step``, as 0-dim tensors (no host sync in the forward)."""
        if self.ramp_steps == 0:
            progress = torch.ones((), device=self.ramp_step.device)
        else:
            progress = (self.ramp_step.to(torch.float32) / self.ramp_steps).clamp(max=1.0)
        return 1.0 + (self.r_max - 1.0) * progress, self.d_max * progress

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.num_channels)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if not self.training:
            scale = torch.rsqrt(self.running_var + self.eps)
            shift = -self.running_mean * scale
        else:
            dims = [0, *range(2, x.dim())]
            var_b, mean_b = torch.var_mean(x, dim=dims, unbiased=False)
            std_b = torch.sqrt(var_b + self.eps)
            if self.momentum is None:  # re-estimation pass (see the module docstring): plain batch statistics
                scale, shift = 1.0 / std_b, -mean_b / std_b
            else:
                with torch.no_grad():
                    r_lim, d_lim = self.ramp_limits()
                    std = torch.sqrt(self.running_var + self.eps)
                    r = torch.minimum(torch.maximum(std_b / std, 1.0 / r_lim), r_lim).to(x.dtype)
                    d = torch.minimum(torch.maximum((mean_b - self.running_mean) / std, -d_lim), d_lim).to(x.dtype)
                scale = r / std_b
                shift = d - mean_b * scale
            self.update_running_stats(mean_b, var_b, x.numel() // x.shape[1])
            if self._ramp_driver == "forward" and self.momentum is not None:  # a re-estimation pass is no step
                self.ramp_step.add_(1)
        if self.weight is not None:
            scale, shift = scale * self.weight, shift * self.weight + self.bias
        return x * scale.to(x.dtype).view(shape) + shift.to(x.dtype).view(shape)

    def extra_repr(self) -> str:
        return (f"{self.num_channels}, r_max={self.r_max}, d_max={self.d_max}, ramp_steps={self.ramp_steps}, "
                f"eps={self.eps}, momentum={self.momentum}, affine={self.affine}, ramp_driver={self._ramp_driver}")
