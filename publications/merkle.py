"""Merkle tree hashing as in RFC 6962 (Certificate Transparency).

Leaves and inner nodes are hashed with different one-byte prefixes, so a leaf
can never be passed off as a node. A document's leaf is the hash of
"<public id> <sha256 of its text>", so the root commits to which documents
were published and to every byte of their text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf(public_id: str, sha256: str) -> bytes:
    return hashlib.sha256(b"\x00" + f"{public_id} {sha256}".encode()).digest()


def root(leaves: Sequence[bytes]) -> str:
    """The tree head of the leaves, in order (hex)."""
    if not leaves:
        return EMPTY_ROOT
    return _subtree(leaves).hex()


def _subtree(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two below the count
    return hashlib.sha256(b"\x01" + _subtree(leaves[:split]) + _subtree(leaves[split:])).digest()
