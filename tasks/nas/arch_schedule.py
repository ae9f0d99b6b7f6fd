"""When alpha steps during the search, and at which learning rate (docs/nas.md, "Architecture schedule").

DARTS takes one alpha step per batch from the first batch on, at Adam 3e-4, for
about 20k steps (50 epochs x 391 batches of 64 from a 25k half). Three options
change that, each for a reason that is not the norm:

- **warm-up** (``search.arch_warmup``, as NNI's DARTS ``warmup_epochs`` and
  P-DARTS/PC-DARTS' 15 of 50 epochs): the first fraction of the search's
  batches trains the weights only, so alpha is first judged by ops that have
  learned something rather than by freshly initialized ones. A fraction (not
  epochs) keeps it the same share of the search at every batch size and budget.
- **updates held fixed across the batch axis** (``search.arch_update_batch``):
  the alpha gradient is averaged over ``arch_update_batch / batch_size``
  batches and alpha steps once per window, so every search batch size makes the
  same number of alpha updates, each from the same number of alpha-half images.
  Without it a batch of 8 makes 8x the updates of a batch of 64 (at the same
  arch lr), while its weight lr is 8x lower (linear scaling): a difference along
  the axis that is not the norm's.
- **learning rate scaled to the budget** (``search.arch_lr_scaling: budget``):
  Adam moves a parameter by at most about ``lr`` per step whatever the size of
  its gradient, so the room alpha has to move is ``lr x updates``. ``budget``
  sets ``lr = arch_lr x arch_reference_updates / updates``, the room of DARTS'
  19,550 updates at 3e-4, so a 64-step search can move alpha as far as DARTS'
  can (and the product is the same at every batch size). ``none`` is DARTS.

The schedule is a function of the batch index only, so a resumed search makes
the same decisions (a resume inside an averaging window loses the window's
partial sum: that window's update uses the batches after the resume).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DARTS_ARCH_UPDATES", "ArchSchedule", "arch_schedule", "accumulation_batches"]

DARTS_ARCH_UPDATES = 50 * 391
"""Alpha updates of DARTS' CIFAR-10 search: 50 epochs x ceil(25,000 / 64) batches."""


def accumulation_batches(batch_size: int, arch_update_batch: int | None) -> int:
    """Batches whose alpha gradients one alpha update averages (1: DARTS, an update per batch)."""
    if arch_update_batch is None:
        return 1
    if arch_update_batch % batch_size:
        raise ValueError(f"search.arch_update_batch={arch_update_batch} is not a multiple of the search batch "
                         f"{batch_size}; use a multiple of every batch size on the axis (or null: one update per "
                         "batch)")
    return arch_update_batch // batch_size


@dataclass(frozen=True)
class ArchSchedule:
    """Alpha's schedule over a search of ``total_batches`` batches.

    Attributes:
        total_batches: batches of the whole search (epochs x batches per epoch, capped by max_steps).
        warmup_batches: leading batches that train the weights only.
        accumulate: batches averaged into one alpha update.
        lr: Adam learning rate of alpha (after scaling).
    """

    total_batches: int
    warmup_batches: int
    accumulate: int
    lr: float

    @property
    def updates(self) -> int:
        """Alpha updates of the whole search (a trailing partial window makes none)."""
        return max(0, self.total_batches - self.warmup_batches) // self.accumulate

    def computes_gradient(self, batch: int) -> bool:
        """Whether batch ``batch`` (0-based) computes an alpha gradient (it belongs to a window that steps)."""
        return self.warmup_batches <= batch < self.warmup_batches + self.updates * self.accumulate

    def steps(self, batch: int) -> bool:
        """Whether alpha steps after batch ``batch``: the last batch of a complete window."""
        return self.computes_gradient(batch) and (batch - self.warmup_batches + 1) % self.accumulate == 0


def arch_schedule(total_batches: int, *, warmup: float, accumulate: int, arch_lr: float, scaling: str,
                  reference_updates: int) -> ArchSchedule:
    """The schedule of a search of ``total_batches`` batches (see the module docstring for the options)."""
    warmup_batches = int(warmup * total_batches)
    schedule = ArchSchedule(total_batches, warmup_batches, accumulate, arch_lr)
    if scaling == "budget" and schedule.updates > 0:
        return ArchSchedule(total_batches, warmup_batches, accumulate, arch_lr * reference_updates / schedule.updates)
    if scaling not in ("none", "budget"):
        raise ValueError(f"arch lr scaling {scaling!r}; use none or budget")
    return schedule
