"""The search record: a session's history laid out as text and PDF, with the database described for citing."""

from __future__ import annotations

import datetime
import hashlib
import io
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from publications.models import DailyManifest
from tests import factories

pytestmark = pytest.mark.django_db

SESSION = [
    {"number": 1, "typed": "valve AND spring", "expanded": "valve AND spring", "mode": "Keyword", "filters": [],
     "hits": 12, "exact": True, "time": "2026-12-02T09:14:03Z"},
    {"number": 2, "typed": "catheter$ NEAR3 balloon", "expanded": "catheter$ NEAR3 balloon", "mode": "Keyword",
     "filters": ["Published before: 2021-06-30"], "hits": 4, "exact": True, "time": "2026-12-02T09:15:40Z"},
    {"number": 3, "typed": "L1 NOT L2", "expanded": "(valve AND spring) NOT (catheter$ NEAR3 balloon)",
     "mode": "Keyword", "filters": [], "hits": 2300, "exact": False, "time": "2026-12-02T09:16:02Z"},
]  # fmt: skip


@pytest.fixture
def archive(db: None) -> DailyManifest:
    factories.patent(title="Spring valve", origin="reference")
    factories.patent(title="Generated valve")
    return DailyManifest.objects.create(
        date=datetime.date(2026, 12, 1), count=2, merkle_root="ab" * 32, manifest="{}",
        manifest_sha256=hashlib.sha256(b"{}").hexdigest(), dump_sha256="",
    )  # fmt: skip


def record(client: Client, kind: str, history: object = SESSION) -> object:
    return client.post("/search/record/", {"history": json.dumps(history), "format": kind})


def test_the_text_record_lists_each_set_as_typed_and_as_run_and_the_database_searched(
    client: Client, archive: DailyManifest
) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    response = record(client, "txt")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="search-record-')
    lines = response.content.decode().splitlines()
    made = datetime.datetime.strptime(lines[5][len("Record made: ") :][:19], "%Y-%m-%d %H:%M:%S")
    assert before <= made.replace(tzinfo=datetime.UTC) <= datetime.datetime.now(datetime.UTC)
    assert (
        lines[5]
        == f"Record made: {made:%Y-%m-%d %H:%M:%S} UTC, from the searcher's browser history (the site keeps no queries)"
    )
    assert lines[:5] + lines[6:] == [
        "Search record",
        "Database searched: All the Patents, http://testserver",
        "  Holdings when the record was made: 2 documents (1 machine-generated, 1 imported reference patents)",
        "  Latest daily publication manifest: 2026-12-01 (UTC), Merkle root " + "ab" * 32,
        "  http://testserver/publications/2026-12-01/manifest.json",
        "",
        "L1   2026-12-02 09:14:03 UTC   Keyword   12 documents",
        "     Query as typed: valve AND spring",
        "     Filters:        none",
        "",
        "L2   2026-12-02 09:15:40 UTC   Keyword   4 documents",
        "     Query as typed: catheter$ NEAR3 balloon",
        "     Filters:        Published before: 2021-06-30",
        "",
        "L3   2026-12-02 09:16:02 UTC   Keyword   about 2,300 documents",
        "     Query as typed: L1 NOT L2",
        "     As run:         (valve AND spring) NOT (catheter$ NEAR3 balloon)",
        "     Filters:        none",
    ]


def test_the_pdf_record_says_the_same_and_its_text_can_be_read_back(client: Client, archive: DailyManifest) -> None:
    response = record(client, "pdf")

    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "Search record",
        "Database searched: All the Patents, http://testserver",
        "Merkle root " + "ab" * 32,
        "L3 2026-12-02 09:16:02 UTC Keyword about 2,300 documents",
        "As run: (valve AND spring) NOT (catheter$ NEAR3 balloon)",
        "Filters: Published before: 2021-06-30",
    ):
        assert expected in " ".join(text.split()), expected
    assert reader.metadata.title == "Search record"
    layout = [line for page in reader.pages for line in page.extract_text(extraction_mode="layout").splitlines()]
    assert [line for line in layout if line.strip() and line.startswith("  ")] == []  # each line at the margin


def test_a_record_is_made_without_storing_anything(client: Client, archive: DailyManifest) -> None:
    with CaptureQueriesContext(connection) as captured:
        record(client, "txt")

    assert [query["sql"].split()[0] for query in captured.captured_queries] == ["SELECT", "SELECT"]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("not json", "No search record: Expecting value"),
        ([], "No search record: The history must list between 1 and 1000 searches"),
        ([{"number": 1}], "No search record: Each search needs 'typed' as text of at most 4,000 characters"),
        ([{**SESSION[0], "number": True}], "No search record: Each search needs a whole 'number'"),
        ([{**SESSION[0], "filters": "none"}], "No search record: 'filters' must be a list"),
    ],
)
def test_a_history_this_site_did_not_make_is_refused_with_a_reason(
    client: Client, db: None, history: object, message: str
) -> None:
    body = history if isinstance(history, str) else json.dumps(history)
    response = client.post("/search/record/", {"history": body, "format": "txt"})

    assert response.status_code == 400
    assert response.content.decode().startswith(message)


def test_the_record_is_posted_with_the_sites_csrf_token(db: None) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/search/record/", {"history": json.dumps(SESSION), "format": "txt"}).status_code == 403
