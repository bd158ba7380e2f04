"""The minimal site: home page, permanent patent pages, tombstones, full-text search."""

import pytest
from django.test import Client

from search.models import Patent

pytestmark = pytest.mark.django_db


def test_home_shows_document_counts(client: Client, imported: dict[str, Patent]) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["counts"] == {"total": 5, "generated": 0, "reference": 5}
    assert b"Wheeled hand truck" in response.content


def test_patent_page_shows_the_document(client: Client, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]

    response = client.get(f"/patents/{truck.public_id}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Wheeled hand truck</h1>" in page
    assert truck.abstract in page
    assert '<li id="claim-9"><span class="claim-number">9.</span> The wheeled hand truck of claim 8' in page
    assert truck.published_at.strftime("%Y-%m-%dT%H:%M:%SZ") in page
    assert "2021-10-19" in page
    assert "Reference patent" in page
    assert truck.sha256 in page


def test_patent_url_is_case_and_padding_tolerant_but_redirects_to_the_permanent_one(
    client: Client, imported: dict[str, Patent]
) -> None:
    truck = imported["US11147202B2"]
    response = client.get(f"/patents/atp-{truck.id}/")
    assert (response.status_code, response["Location"]) == (301, f"/patents/{truck.public_id}/")


def test_unknown_patent_is_404(client: Client, db: None) -> None:
    assert client.get("/patents/ATP-99999999/").status_code == 404
    assert client.get("/patents/US123/").status_code == 404


def test_withdrawn_patent_answers_410_with_its_tombstone(client: Client, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]
    url = truck.get_absolute_url()
    truck.withdraw(reason="Imported twice by mistake")

    response = client.get(url)

    assert response.status_code == 410
    page = response.content.decode()
    assert "Wheeled hand truck" in page
    assert "Imported twice by mistake" in page
    assert "Withdrawn" in page


def test_search_finds_an_imported_patent_from_words_of_its_claims(client: Client, imported: dict[str, Patent]) -> None:
    # Words of claim 20 of US11147203B2 only: "frame mover mechanism".
    response = client.get("/search/", {"q": "frame mover mechanism", "mode": "fulltext"})

    assert response.status_code == 200
    found = [hit.patent.source_id for hit in response.context["results"].hits]
    assert found == ["US11147203B2"]


def test_search_ranks_title_matches_first(client: Client, imported: dict[str, Patent]) -> None:
    # "endoscope" is in the title of US11213186; the other documents don't mention it.
    response = client.get("/search/", {"q": "endoscope", "mode": "fulltext"})
    assert [hit.patent.source_id for hit in response.context["results"].hits] == ["US11213186"]
    assert "<mark>" in response.content.decode()


def test_search_with_no_match_says_so(client: Client, imported: dict[str, Patent]) -> None:
    response = client.get("/search/", {"q": "xylophone", "mode": "fulltext"})
    assert response.status_code == 200
    assert "No documents match" in response.content.decode()
