"""The publication procedure page: its verification steps, run literally with standard tools, give its outputs."""

from __future__ import annotations

import datetime
import html
import os
import re
import subprocess
from pathlib import Path

from django.db import connection
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from pytest_django.live_server_helper import LiveServer

from publications import manifests, timestamps
from search.models import Patent
from tests import factories
from tests.tsa import TimeStampingAuthority

STEP = re.compile(r'<pre class="(command|output)"><(?:code|samp)>(.*?)</(?:code|samp)></pre>', re.S)


def publish_yesterday(count: int) -> None:
    """Documents published a day ago: the clock is the database's, so the test moves them (triggers off)."""
    for number in range(count):
        factories.patent(title=f"Self-closing valve number {number}")
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE search_patent SET published_at = published_at - interval '1 day'")
        cursor.execute("SET session_replication_role = DEFAULT")


def test_every_documented_step_gives_the_documented_output_on_a_built_day(
    live_server: LiveServer, transactional_db: None, settings: SettingsWrapper, tmp_path: Path
) -> None:
    authority = TimeStampingAuthority("Procedure TSA")
    publish_yesterday(3)
    day = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    manifests.build(day)
    manifests.build(day + datetime.timedelta(days=1))  # the next day, whose manifest chains to it
    # Configured only now, so the builds sent no stamp to the broker for a later test's worker.
    settings.TSA_URLS = [authority.url]
    settings.TSA_CA_FILE = str(authority.ca_file)
    timestamps.stamp(day, authority.url)

    page = Client().get(f"/publications/procedure/?day={day}", HTTP_HOST=live_server.url.split("//")[1])
    steps = [(kind, html.unescape(text)) for kind, text in STEP.findall(page.content.decode())]

    assert [kind for kind, _ in steps].count("command") == 8
    folder = tmp_path / "examiner"
    folder.mkdir()
    ran = 0
    for index, (kind, text) in enumerate(steps):
        if kind != "command":
            continue
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", text], cwd=folder, capture_output=True, text=True,
            env={"PATH": os.environ["PATH"], "HOME": str(folder)},
        )  # fmt: skip
        assert result.returncode == 0, (text, result.stderr)
        following = steps[index + 1] if index + 1 < len(steps) else None
        if following and following[0] == "output":
            assert result.stdout == following[1] + "\n", text
            ran += 1
    assert ran == 6
    assert Patent.objects.count() == 3
    authority.stop()


def test_the_procedure_is_linked_from_every_patent_page_and_the_footer(imported: dict[str, Patent]) -> None:
    client = Client()
    for patent in imported.values():
        assert 'href="/publications/procedure/"' in client.get(patent.get_absolute_url()).content.decode()
    home = client.get("/").content.decode()
    assert '<a href="/publications/procedure/">Publication procedure</a>' in home


def test_before_any_day_has_finished_the_procedure_says_so(db: None) -> None:
    page = Client().get("/publications/procedure/").content.decode()

    assert "No day has finished on this site yet" in page
    assert Client().get("/publications/procedure/?day=2001-01-01").status_code == 404
