"""Passage-level meaning: a document is as near to a query as its best passage."""

from __future__ import annotations

import datetime

import pytest

from search import searching
from search.embedding import DocumentText, embed_passages, embed_query
from search.models import Origin, Patent, PatentPassage
from search.publishing import NewDocument, embed_missing_passages, publish
from search.searching import Filters

pytestmark = pytest.mark.django_db

REEL_CLAIMS = [
    "A hose reel comprising a drum rotatably mounted on a frame, a crank connected to the drum, and a hose guide.",
    "The hose reel of claim 1, wherein the frame has two wheels and a handle for pulling the reel across a lawn.",
    "The hose reel of claim 1, wherein the crank folds against the frame when the drum is not being turned.",
    "The hose reel of claim 1, wherein the hose guide moves side to side so the hose winds evenly on the drum.",
    "The hose reel of claim 1, wherein the drum holds thirty metres of garden hose of sixteen millimetre bore.",
    "The hose reel of claim 1, wherein the frame is moulded from polypropylene and has a tray for spray nozzles.",
    "The hose reel of claim 1, wherein a brake on the drum stops it unwinding when the hose is pulled too fast.",
    "The hose reel of claim 1, wherein the wheels have treads that grip wet grass and gravel paths.",
    "The hose reel of claim 1, wherein the handle telescopes and locks at three heights for users of any size.",
    "The hose reel of claim 1, wherein the frame can be hung on a wall bracket over the winter months.",
    "The hose reel of claim 1, wherein a leader hose connects the drum's hub to an outdoor tap through a swivel.",
    "The hose reel of claim 1, wherein the drum's flanges are ribbed so the wound hose cannot slip sideways.",
    "The hose reel of claim 1, further comprising an inlet valve in the hub that shuts off the water flow "
    "by itself as soon as the pressure in the supply line falls below a set threshold.",
    "The hose reel of claim 13, wherein the inlet valve is a spring-loaded poppet held open by the supply "
    "pressure and pushed onto its seat by the spring when that pressure drops.",
    "The hose reel of claim 13, wherein the threshold pressure at which the inlet valve closes is adjustable "
    "by turning a cap that compresses the valve spring.",
    "The hose reel of claim 13, wherein the closed inlet valve stops water in the hose from siphoning back "
    "into the drinking water mains when the mains pressure is lost.",
    "The hose reel of claim 13, wherein the inlet valve reopens on its own once the supply pressure is "
    "restored above the threshold.",
]


def published(title: str, abstract: str, claims: list[str], date: datetime.date) -> Patent:
    numbered = [{"number": n, "text": text} for n, text in enumerate(claims, start=1)]
    vectors = embed_passages([DocumentText(title, abstract, numbered)])[0]
    document = NewDocument(
        title, abstract, numbered, Origin.REFERENCE, vectors.mean, {"source_date": date}, vectors.passages
    )
    return publish([document])[0]


@pytest.fixture
def garden(db: None) -> dict[str, Patent]:
    return {
        "reel": published(
            "Garden hose reel",
            "A wheeled reel winds a garden hose onto a drum turned by a crank, with a guide that lays it evenly.",
            REEL_CLAIMS,
            datetime.date(2019, 5, 1),
        ),
        "barrel": published(
            "Rain water barrel",
            "A barrel collects rain from a downpipe through a filter and lets it out through a tap at its base.",
            ["A rain barrel comprising a lid with a filter, a downpipe diverter and a tap near its base."],
            datetime.date(2015, 3, 1),
        ),
        "sprinkler": published(
            "Oscillating lawn sprinkler",
            "A sprinkler sweeps a bar of nozzles back and forth, driven by a water turbine.",
            ["A sprinkler comprising a nozzle bar, a turbine driven by the water flow and a gear train."],
            datetime.date(2021, 7, 1),
        ),
    }


QUERY = "a water tap fitting whose valve closes automatically on loss of mains pressure so nothing flows back"


def test_a_paraphrase_of_one_claim_ranks_its_document_first_through_its_passage(garden: dict[str, Patent]) -> None:
    vector = embed_query(QUERY)

    by_passage = searching.semantic_ranking(vector, Filters(), depth=3)
    by_mean = dict(searching.nearest_documents(vector, Filters(), depth=3))

    assert [patent_id for patent_id, _ in by_passage] == [garden[n].pk for n in ("reel", "barrel", "sprinkler")]
    # The valve claims' passage is what finds the reel: its mean is diluted by the drum, crank and wheels.
    reel = garden["reel"].pk
    assert dict(by_passage)[reel] - by_mean[reel] > 0.05


def test_each_chunk_of_a_published_document_is_a_passage_in_order(garden: dict[str, Patent]) -> None:
    reel = garden["reel"]
    vectors = embed_passages([DocumentText(reel.title, reel.abstract, reel.claims)])[0]

    stored = list(PatentPassage.objects.filter(patent=reel).order_by("position"))
    assert [passage.position for passage in stored] == list(range(len(vectors.passages)))
    assert len(stored) >= 2
    for passage, expected in zip(stored, vectors.passages, strict=True):
        assert list(passage.embedding) == pytest.approx(expected.tolist(), abs=1e-6)


def test_more_like_this_and_search_by_text_keep_only_what_was_published_before_the_cutoff(
    garden: dict[str, Patent],
) -> None:
    cutoff = Filters(before=datetime.date(2020, 1, 1))

    similar = searching.similar(garden["sprinkler"], limit=5, filters=cutoff)
    by_text = searching.search_by_text(QUERY, filters=cutoff)

    assert [hit.patent for hit in similar] == [garden["reel"], garden["barrel"]]
    assert [hit.patent for hit in by_text.hits] == [garden["reel"], garden["barrel"]]
    later = searching.search_by_text(QUERY, filters=Filters(before=datetime.date(2016, 1, 1)))
    assert [hit.patent for hit in later.hits] == [garden["barrel"]]


def test_documents_stored_without_passages_get_them_once(garden: dict[str, Patent]) -> None:
    PatentPassage.objects.filter(patent=garden["barrel"]).delete()

    assert embed_missing_passages() == 1
    assert embed_missing_passages() == 0
    assert PatentPassage.objects.filter(patent=garden["barrel"]).count() == 1
