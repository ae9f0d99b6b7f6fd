"""CNN-4, the few-shot backbone, with the registry norm in every block.

Four blocks of conv3x3 (padding 1) -> norm -> ReLU -> 2x2 max-pool, as in
Vinyals et al. (2016), Snell et al. (2017) and Finn et al. (2017): 64 filters,
or 32 for MAML on mini-ImageNet (Finn et al. reduce the width there against
overfitting). learn2learn's ``CNN4`` builds the same blocks but hard-codes
``BatchNorm2d``, so the blocks are built here with ``create_norm``.

Feature sizes: 28x28 -> 64 (1x1 after four pools), 32x32 -> 2x2, 84x84 -> 5x5
maps. A norm layer sees C x H x W of 28, 14, 7, 3 (or 32, 16, 8, 4 / 84, 42,
21, 10) squared positions, which decides which BGN group counts fit.

Every norm is followed by a ReLU: a norm with a built-in activation (FRN,
EvoNorm) keeps it and the ReLU becomes an identity
(:func:`normlayers.activation_after`; the Sequential's indices, and so the
state-dict keys, are the same for every norm). ``weight_standardization``
standardizes the four convolutions (:func:`normlayers.standardize_convolutions`).
"""

from __future__ import annotations

from torch import Tensor, nn

from normlayers import activation_after, create_norm, standardize_convolutions

__all__ = ["Conv4", "Conv4Classifier", "feature_size", "conv4_name"]

BLOCKS = 4


def feature_size(filters: int, image_size: int) -> int:
    """Length of the flattened CNN-4 embedding of an image_size x image_size input."""
    side = image_size
    for _ in range(BLOCKS):
        side //= 2
    return filters * side * side


def conv4_name(filters: int) -> str:
    """The model's name in run ids and tables: ``conv4`` at the standard 64 filters, else ``conv4w32``."""
    return "conv4" if filters == 64 else f"conv4w{filters}"


class Conv4(nn.Module):
    """The CNN-4 embedding network: (N, C, H, W) images -> (N, filters * h * w) features.

    Example:
        >>> import torch
        >>> net = Conv4(in_channels=1, filters=64, norm="bgn:num_groups=1")
        >>> net(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 64])
    """

    def __init__(self, in_channels: int, filters: int, norm: str, weight_standardization: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(BLOCKS):
            layer = create_norm(norm, filters)
            layers += [nn.Conv2d(channels, filters, kernel_size=3, padding=1), layer, activation_after(layer),
                       nn.MaxPool2d(2)]
            channels = filters
        self.blocks = nn.Sequential(*layers)
        self.filters = filters
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if weight_standardization:
            standardize_convolutions(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x).flatten(1)


class Conv4Classifier(nn.Module):
    """CNN-4 plus a linear head with one output per way (MAML and ANIL).

    ``features`` and ``head`` are separate children so that ANIL can adapt the
    head alone.
    """

    def __init__(self, in_channels: int, filters: int, norm: str, image_size: int, ways: int,
                 weight_standardization: bool = False) -> None:
        super().__init__()
        self.features = Conv4(in_channels, filters, norm, weight_standardization)
        self.head = nn.Linear(feature_size(filters, image_size), ways)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
