"""Test documents, made one way: patent texts as the model writes them, and stored patents.

A test says only what matters to it; everything else takes these defaults (a real-looking hose reel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generation.training import bottom_up_text, top_down_text
from search.documents import Claim, canonical_text
from search.models import Origin, Patent

TITLE = "Collapsible hose reel with a ratchet lock"
ABSTRACT = (
    "A hose reel has a drum mounted on a frame that folds flat for storage. A ratchet lock on the "
    "drum axle holds the drum at any angle, and a release lever frees it so the hose can be wound."
)
CLAIMS = [
    "1. A hose reel comprising: a frame having two legs joined by a hinge; a drum mounted on an axle "
    "carried by the frame; and a ratchet lock on the axle that holds the drum against rotation.",
    "2. The hose reel of claim 1, wherein the legs fold against each other about the hinge.",
    "3. The hose reel of claim 1, further comprising a release lever that disengages the ratchet lock.",
    "4. The hose reel of claim 3, wherein the release lever is spring biased toward the ratchet.",
]


def top_down(title: str = TITLE, abstract: str = ABSTRACT, claims: Sequence[str] = CLAIMS) -> str:
    """A patent as the model writes it from the top-down prompt: title, abstract, claims."""
    return top_down_text(title, abstract, claims)


def bottom_up(title: str = TITLE, abstract: str = ABSTRACT, claims: Sequence[str] = CLAIMS) -> str:
    """A patent as the model writes it from the bottom-up prompt: claims, abstract, title."""
    return bottom_up_text(title, abstract, claims)


def numbered(texts: Sequence[str]) -> list[Claim]:
    return [{"number": number, "text": text} for number, text in enumerate(texts, start=1)]


def patent(
    *,
    title: str = "Widget",
    abstract: str = "A widget with a gear.",
    claims: Sequence[str] = ("A widget comprising a gear.", "The widget of claim 1, wherein the gear is red."),
    origin: str = Origin.GENERATED,
    save: bool = True,
    **fields: Any,
) -> Patent:
    """A stored patent (or, with save=False, one for bulk_create) whose text is the canonical text."""
    parsed = numbered(claims)
    document = Patent(
        title=title,
        abstract=abstract,
        claims=parsed,
        text=canonical_text(title=title, abstract=abstract, claims=parsed),
        origin=origin,
        **fields,
    )
    if save:
        document.save()
    return document
