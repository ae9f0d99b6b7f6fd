"""The ``model`` section of tasks that train one of the shared ResNets."""

from __future__ import annotations

from dataclasses import dataclass

from ..runner.checks import checked, positive_int

__all__ = ["ModelConfig"]


@dataclass
class ModelConfig:
    """Network.

    Attributes:
        name: resnet8/14/20/32/44/56/110 (CIFAR-style) or resnet18/34/50 (torchvision, ImageNet).
        width: channels of the first stage of a CIFAR-style ResNet.
        zero_init_residual: start every residual branch's last norm with gamma = 0.
        weight_standardization: standardize every convolution's weight per output channel (Qiao et al., 2019;
            normlayers.weight_standardization), e.g. to compare GN with GN + WS; tables label such runs "GN + WS".
    """

    name: str = "resnet20"
    width: int = checked(16, positive_int)
    zero_init_residual: bool = False
    weight_standardization: bool = False
