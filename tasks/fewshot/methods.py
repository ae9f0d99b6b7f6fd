"""The three meta-learners, each a plain ``nn.Module`` with the same two calls.

``meta_loss(episode)`` returns the meta-training loss of one episode (its graph
kept for the outer backward); ``evaluate(episode)`` returns the query accuracy
after the method's test-time procedure. The
LightningModule owns optimization, modes and logging; these own the method.

- :class:`ProtoNet` (Snell et al., 2017): class prototypes are the mean support
  embeddings; logits are negative squared Euclidean distances to them.
- :class:`MAML` (Finn et al., 2017): learn2learn's ``MAML`` wrapper, ``clone()``
  per task and ``adapt()`` on the support loss, first or second order.
- :class:`ANIL` (Raghu et al., 2020): MAML on the linear head only; the CNN-4
  body is meta-learned by the outer loop but never adapted.

``forward="joint"`` sends support and query through the network in one batch
at every step (adaptation losses read the support part, the query loss the
query part); ``"separate"`` sends them apart. See :mod:`tasks.fewshot.protocol`.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.episodes import Episode
from .l2l import l2l
from .models import Conv4, Conv4Classifier, feature_size

__all__ = ["EpisodicLearner", "ProtoNet", "MAML", "ANIL", "accuracy", "prototype_logits"]


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of correct predictions, k/n in double precision (any device)."""
    return int((logits.argmax(dim=1) == labels).sum()) / len(labels)


def prototype_logits(support: Tensor, support_labels: Tensor, query: Tensor, ways: int) -> Tensor:
    """Negative squared Euclidean distances from each query embedding to each class's mean support embedding."""
    one_hot = F.one_hot(support_labels, ways).to(support.dtype)
    prototypes = one_hot.t() @ support / one_hot.sum(0).unsqueeze(1)
    return -torch.cdist(query, prototypes).pow(2)


def _through(net: nn.Module, episode: Episode, joint: bool) -> tuple[Tensor, Tensor]:
    """(support outputs, query outputs) of one network, in one forward or two."""
    if joint:
        out = net(torch.cat([episode.support, episode.query]))
        return out[: len(episode.support)], out[len(episode.support):]
    return net(episode.support), net(episode.query)


class EpisodicLearner(nn.Module):
    """What the module calls: a meta-training loss and a test-time accuracy per episode."""

    def meta_loss(self, episode: Episode) -> Tensor:
        raise NotImplementedError

    def evaluate(self, episode: Episode) -> float:
        raise NotImplementedError


class ProtoNet(EpisodicLearner):
    def __init__(self, in_channels: int, filters: int, norm: str, joint: bool) -> None:
        super().__init__()
        self.encoder = Conv4(in_channels, filters, norm)
        self.joint = joint

    def _logits(self, episode: Episode) -> Tensor:
        support, query = _through(self.encoder, episode, self.joint)
        return prototype_logits(support, episode.support_labels, query, episode.ways)

    def meta_loss(self, episode: Episode) -> Tensor:
        return F.cross_entropy(self._logits(episode), episode.query_labels)

    def evaluate(self, episode: Episode) -> float:
        with torch.no_grad():
            return accuracy(self._logits(episode), episode.query_labels)


class _InnerLoop(EpisodicLearner):
    """Shared by MAML and ANIL: adapt a clone of ``self.adaptive`` on the support loss, score the query."""

    adaptive: "l2l.algorithms.MAML"

    def __init__(self, joint: bool, train_steps: int, test_steps: int) -> None:
        super().__init__()
        self.joint, self.train_steps, self.test_steps = joint, train_steps, test_steps

    def _support(self, net: nn.Module, episode: Episode) -> Tensor:
        if self.joint:
            return net(torch.cat([episode.support, episode.query]))[: len(episode.support)]
        return net(episode.support)

    def _query(self, net: nn.Module, episode: Episode) -> Tensor:
        if self.joint:
            return net(torch.cat([episode.support, episode.query]))[len(episode.support):]
        return net(episode.query)

    def _adapt_steps(self, episode: Episode, steps: int, evaluating: bool) -> Iterator[Callable[[], Tensor]]:
        """Adapt a fresh clone ``steps`` times; after each step, yield a call giving the query logits."""
        raise NotImplementedError

    def _query_logits(self, episode: Episode, steps: int, evaluating: bool) -> Tensor:
        query: Callable[[], Tensor] | None = None
        for query in self._adapt_steps(episode, steps, evaluating):
            pass
        assert query is not None, "steps must be >= 1"
        return query()

    def accuracies_by_steps(self, episode: Episode, steps: Sequence[int]) -> dict[int, float]:
        """Query accuracy after each of ``steps`` adaptation steps, from one adaptation of ``max(steps)`` steps.

        Equal to :meth:`evaluate` with ``test_steps`` set to each (a query forward changes nothing the next
        adaptation step reads: batch-statistics layers in train mode never read their running buffers, and in
        eval mode never write them); the test-time step selection uses it to try many counts at the cost of one.
        """
        wanted, out = set(steps), {}
        with torch.enable_grad():
            for k, query in enumerate(self._adapt_steps(episode, max(wanted), evaluating=True), start=1):
                if k in wanted:
                    with torch.no_grad():
                        out[k] = accuracy(query(), episode.query_labels)
        return out

    def meta_loss(self, episode: Episode) -> Tensor:
        return F.cross_entropy(self._query_logits(episode, self.train_steps, evaluating=False), episode.query_labels)

    def evaluate(self, episode: Episode) -> float:
        # Adaptation needs gradients even in validation and test (the task runs them outside inference mode).
        with torch.enable_grad():
            logits = self._query_logits(episode, self.test_steps, evaluating=True)
        return accuracy(logits.detach(), episode.query_labels)


class MAML(_InnerLoop):
    def __init__(self, in_channels: int, filters: int, norm: str, image_size: int, ways: int, joint: bool,
                 inner_lr: float, train_steps: int, test_steps: int, first_order: bool) -> None:
        super().__init__(joint, train_steps, test_steps)
        self.adaptive = l2l.algorithms.MAML(Conv4Classifier(in_channels, filters, norm, image_size, ways), lr=inner_lr,
                                            first_order=first_order)

    def _adapt_steps(self, episode: Episode, steps: int, evaluating: bool) -> Iterator[Callable[[], Tensor]]:
        # At evaluation, first order: the adapted weights are the same and no meta-gradient is taken.
        learner = self.adaptive.clone(first_order=True if evaluating else None)
        for _ in range(steps):
            learner.adapt(F.cross_entropy(self._support(learner, episode), episode.support_labels))
            yield lambda: self._query(learner, episode)


class ANIL(_InnerLoop):
    def __init__(self, in_channels: int, filters: int, norm: str, image_size: int, ways: int, joint: bool,
                 inner_lr: float, train_steps: int, test_steps: int, first_order: bool) -> None:
        super().__init__(joint, train_steps, test_steps)
        self.body = Conv4(in_channels, filters, norm)
        self.adaptive = l2l.algorithms.MAML(nn.Linear(feature_size(filters, image_size), ways), lr=inner_lr,
                                            first_order=first_order)

    def _adapt_steps(self, episode: Episode, steps: int, evaluating: bool) -> Iterator[Callable[[], Tensor]]:
        with torch.set_grad_enabled(not evaluating):  # at evaluation the body is fixed: only the head adapts
            support, query = _through(self.body, episode, self.joint)
        head = self.adaptive.clone(first_order=True if evaluating else None)
        for _ in range(steps):
            head.adapt(F.cross_entropy(head(support), episode.support_labels))
            yield lambda: head(query)
