"""Lightning plugin that synchronizes registry norms (BN and BGN) across processes.

Used instead of ``Trainer(sync_batchnorm=True)`` when a run sets
``trainer.sync_norm``: the same conversion on GPUs, and on CPUs (gloo) it also
works for BGN, where DDP refuses the SyncBatchNorm modules torch's conversion makes.
"""

from __future__ import annotations

from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm
from torch.nn import Module

from normlayers import convert_sync_norms, revert_sync_norms


class NormSync(TorchSyncBatchNorm):
    def apply(self, model: Module) -> Module:
        return convert_sync_norms(model)

    def revert(self, model: Module) -> Module:
        return super().revert(revert_sync_norms(model))
