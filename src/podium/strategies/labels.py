"""Automatic labels: what a strategy's own run says about each member's answer, for learning routers.

A strategy that asks several models the same question, or has a verifier judge an answer, learns
something about each model on this very prompt at no extra cost. With ``ledger.store_embeddings`` the
client writes these labels to the ledger's ``labels`` table beside the prompt's embedding, and
``podium router train --ledger`` can fit on them (``routing.learned.ledger_labels``). Pure: no I/O.

Which runs label, and why (conservative: a label a router learns from must be evidence about the
model's answer, not about the model's opinion of itself):

- **vote / consensus** (source ``vote`` / ``consensus``, trained as ``agreement``): only when one
  answer is held by a *strict majority* of the members that replied (``majority``) — then 1.0 for each
  member in it and 0.0 for each that replied otherwise, an empty reply included. A tie, a plurality
  short of half, or no two agreeing labels nobody: the run cannot say who was right. A member that
  failed (an error, a timeout) is not labelled: that is the provider's health, not the answer's quality.
  A consensus's synthesizer and judge are not labelled (one merges, the other picks without a majority).
- **cascade with ``accept: verifier``** (source ``verifier``): a step the verifier rejected (NO) 0.0, one it
  accepted (YES) 1.0; a verdict that is neither labels nothing. The last step is never checked, so it is
  never labelled.
- **no label** from a cascade's ``confidence`` (self-reported: models are confidently wrong),
  ``agreement`` (a model agreeing with itself measures consistency, not correctness) or a learned
  acceptance (a router trained on it would learn the acceptance model's own bias); nor from debate and
  mixture, whose agents read each other's answers, so their agreement is not independent.

Only models are labelled: a member that is itself a strategy (nested) answers as ``provider
"podium"`` and is skipped (its own members label themselves). The model is the one that answered
(a fallback's, when a fallback served the member).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Source = Literal["vote", "consensus", "verifier"]
SOURCES: tuple[Source, ...] = ("vote", "consensus", "verifier")


@dataclass(frozen=True)
class Label:
    """One automatic label: ``model``'s answer on this request scored ``score`` (0 or 1) by ``source``."""

    model: str
    source: Source
    score: float


def groups_of(n: int, same: Callable[[int, int], bool]) -> list[list[int]]:
    """Indices 0..n-1 grouped by agreement: each joins the first group whose first member it agrees with
    (as the vote groups its answers)."""
    groups: list[list[int]] = []
    for i in range(n):
        home = next((g for g in groups if same(g[0], i)), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    return groups


def majority(groups: Sequence[Sequence[int]], replied: int) -> set[int] | None:
    """The members of the group holding more than half of the ``replied`` members (empty replies count as
    replied and sit in no group), or None: a tie or a plurality short of half says nobody was right."""
    for group in groups:
        if 2 * len(group) > replied and len(group) >= 2:
            return set(group)
    return None
