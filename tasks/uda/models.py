"""The networks of domain adaptation: a feature extractor holding the norm under test, and a linear classifier.

The norm under test sits in every normalization slot of the feature extractor
and nowhere else: the classifier is linear and the domain discriminator
(:mod:`tasks.uda.adversarial`) is a plain MLP, so every norm faces the same
adversary.

- ``lenet``: two 5x5 convolutions (``width`` and 2 x ``width`` channels, each
  followed by the norm, ReLU and 2x2 max pooling) and one fully connected layer
  of ``feature_dim`` units, for 28- or 32-pixel digits and clothes.
- ``resnet50``: torchvision's ResNet-50 with the norm in every slot, pooled
  2048-d features, then a ``feature_dim`` bottleneck (linear + ReLU). It trains
  from scratch unless ``model.weights`` names a local checkpoint.

Every norm of the LeNet is followed by a ReLU: a norm with a built-in
activation (FRN, EvoNorm) keeps it and the ReLU becomes an identity
(:func:`normlayers.activation_after`); the ResNet-50 handles its slots as
:mod:`tasks.models.imagenet_resnet` says. ``weight_standardization``
standardizes every convolution of the extractor
(:func:`normlayers.standardize_convolutions`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from normlayers import activation_after, create_norm, standardize_convolutions

__all__ = ["LeNetFeatures", "ResNet50Features", "UdaNetwork", "build_network", "load_matching_weights"]


class LeNetFeatures(nn.Module):
    """LeNet-style extractor: (conv 5x5 -> norm -> ReLU -> max pool) x 2 -> linear -> ReLU."""

    def __init__(self, norm: str, in_channels: int, image_size: int, width: int, feature_dim: int) -> None:
        super().__init__()
        norm1, norm2 = create_norm(norm, width), create_norm(norm, 2 * width)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=2, bias=False), norm1, activation_after(norm1), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2, bias=False), norm2, activation_after(norm2), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * side * side, feature_dim), nn.ReLU(inplace=True))
        self.out_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


def load_matching_weights(model: nn.Module, path: Path) -> tuple[int, list[str]]:
    """Copy the tensors of checkpoint ``path`` whose names and shapes match ``model``'s; (copied, skipped names).

    A torchvision ImageNet checkpoint fills every convolution, and the affine
    parameters (and, for BN, the running statistics) of norms that name them as
    BN does; what does not fit (the 1000-class head, BGN's G-sized statistics) is
    skipped and listed. Nothing matching at all is an error: the wrong file.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"model.weights={path}: not a state dict (a mapping of parameter names to tensors)")
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and torch.is_tensor(v) and v.shape == own[k].shape}
    if not any(k.endswith("conv1.weight") for k in matching):
        raise ValueError(f"model.weights={path}: none of its {len(state)} tensors fits the ResNet-50's convolutions")
    model.load_state_dict(matching, strict=False)
    return len(matching), sorted(set(state) - set(matching))


class ResNet50Features(nn.Module):
    """torchvision's ResNet-50 (the norm in every slot) -> pooled 2048-d -> linear ``feature_dim`` -> ReLU."""

    def __init__(self, norm: str, feature_dim: int, weights: str | None = None) -> None:
        super().__init__()
        from ..models.imagenet_resnet import imagenet_resnet

        backbone = imagenet_resnet("resnet50", norm=norm, num_classes=1000)
        self.weights_loaded, self.weights_skipped = 0, []
        if weights:
            self.weights_loaded, self.weights_skipped = load_matching_weights(backbone, Path(weights).expanduser())
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.bottleneck = nn.Sequential(nn.Linear(2048, feature_dim), nn.ReLU(inplace=True))
        self.out_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.backbone(x))


class UdaNetwork(nn.Module):
    """Feature extractor + linear classifier; ``features`` is what the discriminator reads."""

    def __init__(self, features: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Linear(features.out_dim, num_classes)

    @property
    def feature_dim(self) -> int:
        return self.features.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_network(name: str, *, norm: str, num_classes: int, in_channels: int, image_size: int, width: int,
                  feature_dim: int, weights: str | None = None, weight_standardization: bool = False) -> UdaNetwork:
    """``name``'s extractor and a linear classifier; ``weight_standardization`` standardizes every convolution.

    The standardization is applied after ``weights`` are loaded: a checkpoint holds raw weights either way.
    """
    features: nn.Module
    if name == "lenet":
        features = LeNetFeatures(norm, in_channels, image_size, width, feature_dim)
    elif name == "resnet50":
        if in_channels != 3:
            raise ValueError("resnet50 takes 3-channel images")
        features = ResNet50Features(norm, feature_dim, weights)
    else:
        raise ValueError(f"unknown model {name!r}; choose lenet or resnet50")
    if weight_standardization:
        standardize_convolutions(features)
    return UdaNetwork(features, num_classes)
