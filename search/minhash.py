"""Near-duplicate text detection with MinHash and locality-sensitive hashing.

Embeddings catch paraphrases; this catches copied text (a generator reproducing
its training data, with a word changed here and there). A document's word
5-gram shingles are summarised by a 128-value MinHash signature, cut into 32
bands of 4 values; each band is hashed to one 64-bit key and stored in an
indexed table (search.MinHashBand). Two documents share a band key with
probability 1 - (1 - J^4)^32 for Jaccard similarity J: 99.9% at J = 0.5, 3% at
J = 0.15. Finding candidates is then a handful of index lookups whatever the
size of the store, and only those few candidates are compared exactly.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

SHINGLE_WORDS = 5
PERMUTATIONS = 128
BANDS = 32
ROWS = PERMUTATIONS // BANDS
_PRIME = np.uint64((1 << 31) - 1)
_random = np.random.default_rng(20261123)  # fixed: signatures must be comparable across processes and years
_A = _random.integers(1, int(_PRIME), PERMUTATIONS, dtype=np.uint64)
_B = _random.integers(0, int(_PRIME), PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"[a-z0-9]+")


def shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def signature(shingle_set: set[str]) -> np.ndarray:
    """128 minimums of universal hashes of the shingles (uint64 values below 2^31)."""
    if not shingle_set:
        return np.full(PERMUTATIONS, _PRIME, dtype=np.uint64)
    hashes = (
        np.fromiter(
            (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little") for s in shingle_set),
            dtype=np.uint64,
            count=len(shingle_set),
        )
        % _PRIME
    )
    # (a * x + b) mod p for every permutation and shingle; a, x < 2^31 so the product fits in 64 bits.
    return ((_A[:, None] * hashes[None, :] + _B[:, None]) % _PRIME).min(axis=1)


def band_keys(sig: np.ndarray) -> list[int]:
    """One signed 64-bit key per band (a bigint column), distinct across bands."""
    keys = []
    for band in range(BANDS):
        digest = hashlib.blake2b(sig[band * ROWS : (band + 1) * ROWS].tobytes(), digest_size=8, person=bytes([band]))
        keys.append(int.from_bytes(digest.digest(), "little", signed=True))
    return keys


def document_text(title: str, abstract: str, claims: list[dict]) -> str:
    """What is compared: the words of the whole document."""
    return " ".join([title, abstract, *(claim["text"] for claim in claims)])
