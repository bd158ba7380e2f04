"""The canonical form of a published patent document.

A document's canonical text is the markdown of the model card's top-down
format. It is what is hashed (SHA-256) at publication and what must never
change afterwards, so its rendering is deliberately simple and fixed.
"""

from __future__ import annotations

import hashlib
import re
from typing import NotRequired, TypedDict


class Claim(TypedDict):
    number: int
    text: str
    # Cancelled-claim placeholders cover a range, e.g. "1-18. (canceled)".
    through: NotRequired[int]


# "12. A method ...", "12) A method ...", "1-18. (canceled)", "1 - 18 . (canceled)"
_NUMBERED_CLAIM = re.compile(r"^\s*(\d+)(?:\s*[-\u2010-\u2013]\s*(\d+))?\s*[.)]\s*(.*)$", re.DOTALL)


def parse_claim(raw: str, position: int) -> Claim:
    """Split a claim as published ("3. The method of claim 1 ...") into number and text.

    A claim without a leading number takes its position (1-based) as its number.
    """
    match = _NUMBERED_CLAIM.match(raw)
    if not match:
        return {"number": position, "text": raw.strip()}
    claim: Claim = {"number": int(match[1]), "text": match[3].strip()}
    if match[2]:
        claim["through"] = int(match[2])
    return claim


def claim_label(claim: Claim) -> str:
    if "through" in claim:
        return f"{claim['number']}-{claim['through']}"
    return str(claim["number"])


def canonical_text(*, title: str, abstract: str, claims: list[Claim]) -> str:
    lines = ["# Patent", "", "## Title", title, "", "## Abstract", abstract, "", "## Claims"]
    lines += [f"{claim_label(claim)}. {claim['text']}" for claim in claims]
    return "\n".join(lines) + "\n"


def sha256_hex(text: str) -> str:
    """The hash the database stores at publication (see the publish trigger)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
