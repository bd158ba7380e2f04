"""ARCHIVE_SNAPSHOTS: each day's evidence pages captured by Save Page Now (a stand-in on loopback)."""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from publications import archiving, manifests
from publications.models import ArchiveCapture

pytestmark = pytest.mark.django_db


class SavePageNow:
    """The SPN2 API's two calls, as the Internet Archive answers them: each job is pending once, then done."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.submitted: list[tuple[str, str]] = []  # (url, Authorization header)
        self.polls: dict[str, int] = {}
        archive = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if archive.refuse:
                    self.answer(429, {"message": "You have already reached the limit of active sessions"})
                    return
                archive.submitted.append((form["url"][0], self.headers.get("Authorization", "")))
                self.answer(200, {"url": form["url"][0], "job_id": f"spn2-{len(archive.submitted)}"})

            def do_GET(self) -> None:
                job = self.path.rsplit("/", 1)[1]
                archive.polls[job] = archive.polls.get(job, 0) + 1
                if archive.polls[job] == 1:
                    self.answer(200, {"status": "pending", "job_id": job})
                    return
                url = archive.submitted[int(job.split("-")[1]) - 1][0]
                self.answer(
                    200, {"status": "success", "job_id": job, "timestamp": "20261202003000", "original_url": url}
                )

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/save"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def archive(settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch) -> Iterator[SavePageNow]:
    stand_in = SavePageNow()
    settings.ARCHIVE_SNAPSHOTS = True
    settings.ARCHIVE_SAVE_URL = stand_in.url
    settings.ARCHIVE_REQUEST_INTERVAL = 0
    settings.SITE_URL = "https://patents.example.org"
    monkeypatch.setattr(archiving, "POLL_SECONDS", 0.01)
    yield stand_in
    stand_in.stop()


def yesterday() -> datetime.date:
    return timezone.now().date() - datetime.timedelta(days=1)


def test_a_days_manifest_browse_page_and_sitemap_are_captured_and_shown(
    archive: SavePageNow, settings: SettingsWrapper, django_capture_on_commit_callbacks
) -> None:
    settings.ARCHIVE_ACCESS_KEY, settings.ARCHIVE_SECRET_KEY = "access", "secret"
    with django_capture_on_commit_callbacks() as callbacks:
        manifests.build(yesterday())
    assert len(callbacks) == 1  # sent to a worker after the commit

    rows = archiving.capture(yesterday())

    day = yesterday()
    expected = [
        f"https://patents.example.org/publications/{day}/manifest.json",
        f"https://patents.example.org/browse/{day.year}/{day.month}/{day.day}/",
        "https://patents.example.org/sitemap.xml",
    ]
    assert [page for page, _ in archive.submitted] == expected
    assert {authorization for _, authorization in archive.submitted} == {"LOW access:secret"}
    host = archive.url.removesuffix("/save")
    assert [row.capture_url for row in rows] == [f"{host}/web/20261202003000/{page}" for page in expected]
    page = Client().get(f"/browse/{day:%Y/%m/%d}/").content.decode()
    assert page.count("Archived by the Internet Archive") == 3
    # Captured pages are not asked for again.
    assert archiving.due() == []
    archiving.capture(yesterday())
    assert len(archive.submitted) == 3


def test_a_refused_capture_is_recorded_and_asked_again_later(archive: SavePageNow) -> None:
    archive.refuse = True
    manifests.build(yesterday())

    rows = archiving.capture(yesterday())

    assert [row.capture_url for row in rows] == ["", "", ""]
    assert all("429" in row.last_error for row in rows)
    assert archiving.due() == []
    assert archiving.due(timezone.now() + datetime.timedelta(minutes=2)) == [yesterday()]
    archive.refuse = False
    archiving.capture(yesterday())
    assert ArchiveCapture.objects.exclude(capture_url="").count() == 3
    assert "Not yet archived" not in Client().get(f"/browse/{yesterday():%Y/%m/%d}/").content.decode()


def test_nothing_is_sent_to_the_archive_unless_it_is_switched_on(
    settings: SettingsWrapper, django_capture_on_commit_callbacks
) -> None:
    settings.ARCHIVE_SNAPSHOTS = False
    with django_capture_on_commit_callbacks() as callbacks:
        manifests.build(yesterday())

    assert callbacks == []
    assert archiving.due() == []
