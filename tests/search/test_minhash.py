"""Copied text is found through MinHash bands, whatever the size of the store."""

import pytest

from search import minhash
from search.indexing import find_copy
from search.models import MinHashBand, Patent

CLAIM = (
    "A hose reel comprising a frame having two legs joined by a hinge, a drum mounted on an axle carried by the "
    "frame, and a ratchet lock on the axle that holds the drum against rotation in either direction"
)


def test_signatures_estimate_jaccard_similarity() -> None:
    edited = CLAIM.replace("two legs", "three legs").replace("either direction", "one direction")
    a, b = minhash.shingles(CLAIM), minhash.shingles(edited)

    exact = minhash.jaccard(a, b)
    estimate = float((minhash.signature(a) == minhash.signature(b)).mean())

    assert 0.4 < exact < 0.8
    assert estimate == pytest.approx(exact, abs=0.15)
    assert minhash.signature(a).tolist() == minhash.signature(set(a)).tolist()  # deterministic


def test_similar_texts_share_a_band_and_different_ones_do_not() -> None:
    keys = set(minhash.band_keys(minhash.signature(minhash.shingles(CLAIM))))
    edited = set(minhash.band_keys(minhash.signature(minhash.shingles(CLAIM.replace("hinge", "pivot")))))
    other = set(minhash.band_keys(minhash.signature(minhash.shingles("A bicycle bell with a thumb lever " * 3))))
    assert len(keys) == minhash.BANDS
    assert keys & edited
    assert not keys & other


@pytest.mark.django_db
def test_import_stores_bands_and_find_copy_finds_a_retitled_copy(imported: dict[str, Patent]) -> None:
    tractor = imported["US11147203B2"]
    assert MinHashBand.objects.filter(patent=tractor).count() == minhash.BANDS
    claims = [dict(claim) for claim in tractor.claims]
    claims[3]["text"] = claims[3]["text"].replace("frame", "chassis")

    copy = find_copy("A novel farm vehicle", "A vehicle for farms with implements.", claims)

    assert copy is not None
    assert copy.patent == tractor
    assert copy.jaccard > 0.8  # same claims; new title and abstract, one claim edited


@pytest.mark.django_db
def test_find_copy_ignores_new_text(imported: dict[str, Patent]) -> None:
    assert find_copy("Hose reel", CLAIM, [{"number": 1, "text": CLAIM}]) is None
