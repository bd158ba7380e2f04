"""Generated requests never get a 5xx; what the campaign found stays found."""

from __future__ import annotations

import pytest
from django.test import Client

from allpatents.fuzzing import fuzz
from search.models import Patent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "status"),
    [
        # NUL characters reached PostgreSQL, which refuses them in text (DataError: a 500).
        ("/browse/classification/Y%00/", 404),
        ("/browse/classification/p%3F%F2%80%85%98%00%C2%9E/?page=0", 404),
        ("/api/patents/%C2%A0%C3%98p7M%C3%87%00", 404),
        ("/api/search?q=gear&classification=A61B%00", 400),
        ("/search/?q=gear&classification=A61B%00", 400),
    ],
)
def test_requests_the_fuzzing_campaign_found_answer_4xx(
    client: Client, imported: dict[str, Patent], url: str, status: int
) -> None:
    assert client.get(url).status_code == status


def test_a_cpc_filter_takes_a_subclass_or_a_group_and_nothing_else(client: Client, imported: dict[str, Patent]) -> None:
    statuses = [
        client.get("/api/search", {"q": "truck", "classification": code}).status_code
        for code in ("B62B", "b62b 5", "B62B5/02", "B62", "truck")
    ]

    assert statuses == [200, 200, 200, 400, 400]


@pytest.mark.slow
def test_a_thousand_generated_requests_to_every_url_get_no_server_error(imported: dict[str, Patent]) -> None:
    report = fuzz(1_000, random_seed=1)

    assert report.requests == 1_000
    assert report.server_errors == []
    assert report.statuses[200] > 100  # the campaign reaches real pages, not only refusals
