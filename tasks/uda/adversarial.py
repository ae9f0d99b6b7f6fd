"""The pieces of adversarial adaptation: gradient reversal, its ramp, the discriminator, CDAN's conditioning.

DANN (Ganin et al., JMLR 2016) trains a domain discriminator on the features
and, through a gradient-reversal layer, the feature extractor against it. The
reversal's coefficient ramps from 0 to 1 as ``2 / (1 + exp(-10 p)) - 1`` over the
training progress p in [0, 1], so the early, noisy discriminator does not
disturb the features; the learning rate anneals as ``lr (1 + 10 p)^-0.75``.

CDAN (Long et al., NeurIPS 2018) conditions the discriminator on the
classifier's prediction g: it reads the outer product f x g (multilinear map) or,
when that is too large, a fixed random projection of both multiplied element-wise
(randomized map). CDAN+E weights each example by ``1 + exp(-H(g))`` so confident
predictions count more. As in the Transfer-Learning-Library, g and the weights
are detached: the adversarial gradient reaches the features only through f.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GradientReversal", "reverse_gradient", "grl_coefficient", "annealed_lr_factor", "DomainDiscriminator",
    "MultilinearMap", "RandomizedMultilinearMap", "entropy_weights", "domain_adversarial_loss", "MULTILINEAR_MAX_DIM",
]

MULTILINEAR_MAX_DIM = 4096  # the CDAN paper switches to the randomized map above this


class GradientReversal(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by ``-coefficient``."""

    @staticmethod
    def forward(ctx, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad.neg() * ctx.coefficient, None


def reverse_gradient(x: Tensor, coefficient: float) -> Tensor:
    return GradientReversal.apply(x, coefficient)


def grl_coefficient(progress: float) -> float:
    """DANN's ramp: 2 / (1 + exp(-10 p)) - 1, from 0 at p = 0 to about 1 at p = 1."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def annealed_lr_factor(progress: float) -> float:
    """DANN's learning-rate factor (1 + 10 p)^-0.75 (1 at the start, about 0.1656 at the end)."""
    return (1.0 + 10.0 * progress) ** -0.75


class DomainDiscriminator(nn.Module):
    """A plain MLP, ``in -> hidden -> hidden -> 1`` logit (source = 1), ReLU and dropout, no normalization."""

    def __init__(self, in_features: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class MultilinearMap(nn.Module):
    """f (N, F), g (N, C) -> the flattened outer product (N, F * C)."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.out_dim = feature_dim * num_classes

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)


class RandomizedMultilinearMap(nn.Module):
    """f, g -> (f R_f) * (g R_g) / sqrt(d) with fixed Gaussian R_f (F x d), R_g (C x d); saved with the model."""

    def __init__(self, feature_dim: int, num_classes: int, out_dim: int, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("r_f", torch.randn(feature_dim, out_dim, generator=generator))
        self.register_buffer("r_g", torch.randn(num_classes, out_dim, generator=generator))
        self.out_dim = out_dim

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        return (f @ self.r_f) * (g @ self.r_g) / math.sqrt(self.out_dim)


def entropy_weights(probabilities: Tensor, domain_sizes: tuple[int, int]) -> Tensor:
    """CDAN+E's example weights 1 + exp(-H(g)), normalized to sum to the size of each domain's part.

    Normalizing per domain (as the CDAN authors' code does) keeps the source and
    target halves of the loss equally weighted whatever their confidence.
    """
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(1)
    weights = 1.0 + torch.exp(-entropy)
    parts = weights.detach().split(list(domain_sizes))
    return torch.cat([p / p.sum() * len(p) for p in parts])


def domain_adversarial_loss(logits: Tensor, domain_sizes: tuple[int, int],
                            weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Binary cross-entropy of the discriminator (source 1, target 0), each domain half of the loss.

    Returns the loss and the discriminator's accuracy (a training diagnostic:
    0.5 means the features no longer tell the domains apart).
    """
    n_source, n_target = domain_sizes
    labels = torch.cat([logits.new_ones(n_source), logits.new_zeros(n_target)])
    per_example = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if weights is not None:
        per_example = per_example * weights
    source_part, target_part = per_example.split([n_source, n_target])
    loss = 0.5 * (source_part.mean() + target_part.mean())
    accuracy = ((logits > 0).float() == labels).float().mean()
    return loss, accuracy
