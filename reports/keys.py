"""Comparison keys: which settings tell two tables of one task apart.

Records carry ``comparison`` (every resolved config value that changes what is
computed) and its hash; the hash is part of a table's context
(:class:`reports.record.Context`), so runs made with different settings never
share a table or a summary column. This module says *which* settings differ,
so a caption can name them (``data.fraction 0.01 | 0.02``) and a refused
summary column can say why in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .record import ABSENT, Context, format_scalar, scalar_order

__all__ = ["KeyDifference", "comparison_differences", "differing_keys"]


def differing_keys(contexts: Iterable[Context]) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """Per (task, dataset, model): the comparison keys whose value differs among its keyed contexts, sorted."""
    values: dict[tuple[str, str, str], dict[str, set[Any]]] = {}
    members: dict[tuple[str, str, str], list[Context]] = {}
    for context in contexts:
        if context.keyed:
            members.setdefault(context.head, []).append(context)
    for head, group in members.items():
        keys = {k for c in group for k, _ in c.comparison}
        found = values.setdefault(head, {k: set() for k in keys})
        for c in group:
            mine = dict(c.comparison)
            for k in keys:
                found[k].add(format_scalar(mine[k]) if k in mine else ABSENT)
    return {head: tuple(sorted(k for k, v in found.items() if len(v) > 1)) for head, found in values.items()}


@dataclass(frozen=True)
class KeyDifference:
    """One comparison key that tells a context apart from the others of its task, dataset and model."""

    key: str
    value: str  # this context's value as spelled ("absent" when its runs lack the key)
    values: tuple[str, ...]  # every value among the contexts, in sort order

    def caption(self) -> str:
        """`data.fraction 0.01 | 0.02`: the key and every value it takes among the head's tables."""
        return f"{self.key} {' | '.join(self.values)}"


def comparison_differences(context: Context, contexts: Iterable[Context]) -> tuple[KeyDifference, ...]:
    """The comparison keys in which `context` differs from the other contexts of its (task, dataset, model).

    What a caption names so a reader sees why two tables are not one (empty
    when the context is alone or carries no key). Example::

        [d.caption() for d in comparison_differences(table.context, [t.context for t in tables])]
        # ['data.fraction 0.01 | 0.02']
    """
    if not context.keyed:
        return ()
    peers = [c for c in dict.fromkeys(contexts) if c.head == context.head and c.keyed]
    keys = differing_keys(peers).get(context.head, ())
    tables = [dict(c.comparison) for c in peers]
    mine = dict(context.comparison)
    spell = lambda d, k: format_scalar(d[k]) if k in d else ABSENT  # noqa: E731
    out = []
    for key in keys:
        order = {spell(d, key): scalar_order(d.get(key)) for d in tables}
        out.append(KeyDifference(key, spell(mine, key), tuple(sorted(order, key=order.__getitem__))))
    return tuple(out)
