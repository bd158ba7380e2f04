"""Mirrors: one installation's record copied into another, verified before it is stored, and verified again there."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from pytest_django.live_server_helper import LiveServer

from allpatents.embedded import free_port
from allpatents.settings import redis_database
from allpatents.web import gunicorn_command
from publications import manifests, merkle, ots, timestamps
from publications.models import DailyManifest, Mirror, OpenTimestampsProof
from search.models import Patent, Tombstone
from tests import factories
from tests.conftest import BASE_DIR, service_environment
from tests.ots_calendar import Calendar
from tests.tsa import TimeStampingAuthority

TITLES = {
    2: ["Self-closing valve with a float", "Folding ladder hinge", "Rain gauge with a siphon"],
    1: ["Hose reel with a ratchet lock", "Bicycle bell with a spring clapper"],
}
WITHDRAWN_BEFORE = "Folding ladder hinge"  # before its day's manifest was built: listed, not in the dump
WITHDRAWN_AFTER = "Bicycle bell with a spring clapper"  # after: in the dump, withdrawn since


def day(days_ago: int) -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=days_ago)


def publish_days_ago(days_ago: int, titles: list[str]) -> None:
    """Documents published some days ago: the clock is the database's, so the test moves them (triggers off)."""
    numbers = [factories.patent(title=title, origin="reference").pk for title in titles]
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE search_patent SET published_at = published_at - %s * interval '1 day', "
            "publication_date = publication_date - %s WHERE id = ANY(%s)",
            [days_ago, days_ago, numbers],
        )
        cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
def authority(settings: SettingsWrapper) -> Iterator[TimeStampingAuthority]:
    started = TimeStampingAuthority("Mirror TSA")
    settings.TSA_CA_FILE = str(started.ca_file)
    yield started
    started.stop()


def build_origin(settings: SettingsWrapper, authority: TimeStampingAuthority, site_url: str) -> None:
    """Two finished days (five documents, one withdrawn before and one after its manifest), stamped."""
    settings.SITE_URL = site_url
    for days_ago, titles in TITLES.items():
        publish_days_ago(days_ago, titles)
    Patent.objects.get(title=WITHDRAWN_BEFORE).withdraw(reason="A duplicate of another publication")
    built = manifests.build_missing()
    assert [manifest.date for manifest in built] == [day(2), day(1)]
    # Configured only now, so the builds sent no stamp to the broker for a later test's worker.
    settings.TSA_URLS = [authority.url]
    for manifest in built:
        timestamps.stamp(manifest.date, authority.url)
    Patent.objects.get(title=WITHDRAWN_AFTER).withdraw(reason="Published by mistake")


def record_of_origin() -> dict[str, list[tuple[object, ...]]]:
    return {
        "documents": list(Patent.objects.order_by("id").values_list("id", "sha256", "published_at", "text")),
        "tombstones": list(Tombstone.objects.order_by("id").values_list("id", "sha256", "published_at", "reason")),
        "manifests": list(DailyManifest.objects.order_by("date").values_list("date", "manifest", "dump_sha256")),
    }


def download(folder: Path) -> dict[str, object]:
    """The origin's /publications/ as a folder of downloaded days; its index."""
    client = Client()
    index = client.get("/publications/index.json").json()
    folder.mkdir()
    (folder / "index.json").write_text(json.dumps(index))
    for entry in index["days"]:
        date = entry["date"]
        (folder / date).mkdir(parents=True)
        (folder / date / "manifest.json").write_bytes(client.get(f"/publications/{date}/manifest.json").content)
        dump = client.get(f"/publications/{date}/documents.jsonl.gz")
        (folder / date / "documents.jsonl.gz").write_bytes(b"".join(dump.streaming_content))
        for stamp in entry["timestamps"]:
            token = client.get(f"/publications/{date}/manifest.json.{stamp['slug']}.tsr").content
            (folder / date / f"manifest.json.{stamp['slug']}.tsr").write_bytes(token)
        if "opentimestamps" in entry:
            proof = client.get(f"/publications/{date}/manifest.json.ots").content
            (folder / date / "manifest.json.ots").write_bytes(proof)
    return index


def forget_everything() -> None:
    """This installation becomes an empty one (the test then mirrors into it what it published)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction defers them
        cursor.execute(
            "TRUNCATE search_patent, search_tombstone, publications_dailymanifest, publications_manifesttimestamp, "
            "publications_mirror CASCADE"
        )
    for date in (day(2), day(1)):
        manifests.dump_path(date).unlink()


def edit_index(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    index = json.loads((folder / "index.json").read_text())
    edit(index)
    (folder / "index.json").write_text(json.dumps(index))


@pytest.fixture
def downloaded(
    db: None, settings: SettingsWrapper, authority: TimeStampingAuthority, tmp_path: Path
) -> tuple[Path, dict[str, list[tuple[object, ...]]]]:
    """The origin's days downloaded to a folder, and what it had stored; the installation is then empty."""
    build_origin(settings, authority, "https://origin.example")
    folder = tmp_path / "days"
    download(folder)
    stored = record_of_origin()
    forget_everything()
    return folder, stored


def test_a_folder_of_downloaded_days_makes_a_copy_with_the_origins_ids_texts_hashes_and_dates(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    folder, origin = downloaded

    call_command("mirror", str(folder))

    assert record_of_origin() == origin
    copies = Patent.objects.order_by("id")
    assert [copy.mirrored_from for copy in copies] == [f"https://origin.example{c.get_absolute_url()}" for c in copies]
    # The database's clock says when the copy saw them; their publication dates stay the origin's.
    assert [(copy.first_seen_at.date(), copy.published_at.date()) for copy in copies] == [
        (day(0), day(2)),
        (day(0), day(2)),
        (day(0), day(1)),
    ]
    assert Mirror.objects.get().origin == "https://origin.example"
    report = manifests.verify()
    assert (report.documents, report.manifests, report.tokens, report.problems) == (3, 2, 2, [])


def test_mirroring_again_stores_nothing_new_and_then_what_the_origin_added_since(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, origin = downloaded
    full_index = (folder / "index.json").read_text()

    def as_before_the_late_news(index: dict[str, Any]) -> None:
        index["days"][1]["timestamps"] = []  # the authority had not answered yet
        index["days"][1]["withdrawn"] = []  # nor was the bell withdrawn

    edit_index(folder, as_before_the_late_news)
    call_command("mirror", str(folder))
    assert Patent.objects.filter(title=WITHDRAWN_AFTER).exists()
    call_command("mirror", str(folder))
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Mirror of https://origin.example: 0 new day(s), 0 document(s), 0 withdrawal(s), 0 time stamp(s); "
        "2 day(s) already up to date."
    )

    (folder / "index.json").write_text(full_index)
    call_command("mirror", str(folder))

    assert capsys.readouterr().out.splitlines()[0] == f"{day(1)}: 1 new time stamp(s), 1 new withdrawal(s)"
    assert record_of_origin() == origin
    assert Client().get(f"/patents/{Tombstone.objects.get(title=WITHDRAWN_AFTER).public_id}/").status_code == 410
    assert manifests.verify().problems == []


def test_a_tampered_dump_stops_the_mirror_at_its_day_and_a_later_run_resumes_there(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    folder, origin = downloaded
    dump = folder / str(day(1)) / "documents.jsonl.gz"
    genuine = dump.read_bytes()
    records = gzip.decompress(genuine).replace(b"ratchet", b"ratchel")
    dump.write_bytes(gzip.compress(records, mtime=0))

    with pytest.raises(CommandError, match=f"{day(1)}: the dump does not have the SHA-256 the manifest gives"):
        call_command("mirror", str(folder))

    assert list(DailyManifest.objects.values_list("date", flat=True)) == [day(2)]
    assert list(Patent.objects.values_list("title", flat=True).order_by("id")) == TITLES[2][::2]
    assert "dump does not have" in Mirror.objects.get().last_error
    dump.write_bytes(genuine)
    call_command("mirror", str(folder))
    assert record_of_origin() == origin


def forge_first_day(folder: Path) -> None:
    """A consistent rewrite of the first day: a document's text, its hash, the dump, the root, the index."""

    date = str(day(2))
    dump_file = folder / date / "documents.jsonl.gz"
    records = [json.loads(line) for line in gzip.decompress(dump_file.read_bytes()).splitlines()]
    records[0]["text"] = records[0]["text"].replace("float", "balloon")
    records[0]["sha256"] = hashlib.sha256(records[0]["text"].encode()).hexdigest()
    dump = gzip.compress(b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records), mtime=0)
    dump_file.write_bytes(dump)
    manifest = json.loads((folder / date / "manifest.json").read_text())
    manifest["documents"][0]["sha256"] = records[0]["sha256"]
    manifest["merkle_root"] = merkle.root([merkle.leaf(d["id"], d["sha256"]) for d in manifest["documents"]])
    manifest["dump_sha256"] = hashlib.sha256(dump).hexdigest()
    text = json.dumps(manifest, indent=1, sort_keys=True)
    (folder / date / "manifest.json").write_text(text)

    def point_at_the_forgery(index: dict[str, Any]) -> None:
        index["days"][0]["manifest_sha256"] = hashlib.sha256(text.encode()).hexdigest()

    edit_index(folder, point_at_the_forgery)


def test_a_rewritten_day_is_caught_by_its_time_stamp_and_without_one_by_the_next_days_chain_link(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    folder, _ = downloaded
    forge_first_day(folder)

    with pytest.raises(CommandError, match=f"{day(2)}: the time stamp by .* does not check out: it stamps another"):
        call_command("mirror", str(folder))

    def without_its_stamp(index: dict[str, Any]) -> None:
        index["days"][0]["timestamps"] = []

    edit_index(folder, without_its_stamp)
    with pytest.raises(CommandError, match=f"{day(1)}: the chain to {day(2)} is broken"):
        call_command("mirror", str(folder))
    assert (Patent.objects.count(), DailyManifest.objects.count()) == (0, 0)


def test_a_mirror_stores_only_copies_and_an_origin_stores_no_copies(db: None, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="only a mirror installation stores copies"), transaction.atomic():
        factories.patent(mirrored_from="https://origin.example/patents/ATP-00000001/")

    Mirror.objects.create(origin="https://origin.example", source="https://origin.example")
    with pytest.raises(IntegrityError, match="this installation is a mirror"), transaction.atomic():
        factories.patent()
    assert manifests.build_missing() == []


def test_an_installation_with_a_record_of_its_own_is_not_made_a_mirror(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    folder, _ = downloaded
    factories.patent()

    with pytest.raises(CommandError, match="has a record of its own"):
        call_command("mirror", str(folder))
    assert not Mirror.objects.exists()


@pytest.fixture
def copy_database(transactional_db: None) -> Iterator[str]:
    """A second, empty database on the same server: the copy's. Its DATABASE_URL."""
    db = connection.settings_dict
    name = f"{db['NAME']}_copy"
    server = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"]}
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield service_environment()["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_running_installation_mirrored_into_another_on_loopback_verifies_there_and_names_its_origin(
    live_server: LiveServer,
    copy_database: str,
    settings: SettingsWrapper,
    authority: TimeStampingAuthority,
    tmp_path: Path,
) -> None:
    build_origin(settings, authority, live_server.url)
    origin = record_of_origin()
    environment = {
        **service_environment(),
        "DATABASE_URL": copy_database,
        "VAR_DIR": str(tmp_path / "copy"),
        "TSA_CA_FILE": str(authority.ca_file),
        "TSA_URLS": "",
        # Its own cache: the two installations share a Redis server here, not a record.
        "CACHE_URL": redis_database(settings.CELERY_BROKER_URL, 5),
    }

    def manage(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "manage.py", *arguments]
        return subprocess.run(command, cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=300)

    mirrored = manage("mirror", live_server.url)
    assert mirrored.returncode == 0, mirrored.stderr
    assert mirrored.stdout.splitlines() == [
        f"{day(2)}: 2 document(s), 1 withdrawn, 1 time stamp(s): verified and stored",
        f"{day(1)}: 1 document(s), 1 withdrawn, 1 time stamp(s): verified and stored",
        f"Mirror of {live_server.url}: 2 new day(s), 3 document(s), 2 withdrawal(s), 2 time stamp(s); "
        "0 day(s) already up to date.",
    ]
    verified = manage("verify_publications")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[-1] == (
        "3 documents, 2 daily manifests and 2 time stamps checked: "
        "all hashes, roots, chain links and time stamps match."
    )
    with psycopg.connect(copy_database) as copy:
        documents = copy.execute("SELECT id, sha256, published_at, text FROM search_patent ORDER BY id")
        tombstones = copy.execute("SELECT id, sha256, published_at, reason FROM search_tombstone ORDER BY id")
        copied = (documents.fetchall(), tombstones.fetchall())
    assert copied == (origin["documents"], origin["tombstones"])

    port = free_port()
    web = subprocess.Popen(
        gunicorn_command(f"127.0.0.1:{port}", workers=1), cwd=BASE_DIR, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        document = Patent.objects.order_by("id").first()
        page = fetch(f"http://127.0.0.1:{port}{document.get_absolute_url()}")
        origin_manifest = fetch(f"{live_server.url}/publications/{day(1)}/manifest.json")
        copy_manifest = fetch(f"http://127.0.0.1:{port}/publications/{day(1)}/manifest.json")
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert f'A read-only copy of the record of <a href="{live_server.url}/">' in page
    assert f'<a href="{live_server.url}{document.get_absolute_url()}">the document at its origin</a>' in page
    assert "First seen by this copy" in page
    assert copy_manifest == origin_manifest


def fetch(url: str) -> str:
    """A page of a server that may still be starting (a fresh gunicorn takes a few seconds)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return answer.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_index_lists_each_built_day_with_its_hashes_stamps_and_withdrawals(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    folder, _ = downloaded
    index = json.loads((folder / "index.json").read_text())

    assert index["record_of"] == "https://origin.example"
    assert [entry["date"] for entry in index["days"]] == [str(day(2)), str(day(1))]
    assert [[item["reason"] for item in entry["withdrawn"]] for entry in index["days"]] == [
        ["A duplicate of another publication"],
        ["Published by mistake"],
    ]
    assert [len(entry["timestamps"]) for entry in index["days"]] == [1, 1]


def test_a_days_opentimestamps_proof_is_copied_checked_and_later_completed(
    db: None, settings: SettingsWrapper, authority: TimeStampingAuthority, tmp_path: Path
) -> None:
    calendar = Calendar()
    build_origin(settings, authority, "https://origin.example")
    settings.OTS_CALENDARS = [calendar.url]
    ots.anchor(day(1))  # pending
    download(pending := tmp_path / "pending")
    calendar.mine(height=871234)
    ots.anchor(day(1))  # complete
    download(complete := tmp_path / "complete")
    calendar.stop()
    settings.OTS_CALENDARS = []
    forget_everything()

    call_command("mirror", str(pending))
    assert OpenTimestampsProof.objects.get().bitcoin_height is None
    call_command("mirror", str(complete))

    assert OpenTimestampsProof.objects.get().bitcoin_height == 871234
    assert manifests.verify().problems == []
    # The day after's proof offered for the first day: it commits to another manifest.
    shutil.copy(complete / str(day(1)) / "manifest.json.ots", complete / str(day(2)) / "manifest.json.ots")

    def with_a_proof_for_the_first_day(index: dict[str, Any]) -> None:
        index["days"][0]["opentimestamps"] = {"bitcoin_height": 871234}

    edit_index(complete, with_a_proof_for_the_first_day)
    forget_everything()
    with pytest.raises(CommandError, match=f"{day(2)}: the OpenTimestamps proof commits to another hash"):
        call_command("mirror", str(complete))
    assert DailyManifest.objects.count() == 0


def test_a_source_that_is_not_a_record_stops_the_mirror_with_a_message(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    folder, _ = downloaded
    manifest = folder / str(day(2)) / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])

    def matching_the_cut_manifest(index: dict[str, Any]) -> None:
        index["days"][0]["manifest_sha256"] = hashlib.sha256(manifest.read_bytes()).hexdigest()

    edit_index(folder, matching_the_cut_manifest)

    with pytest.raises(CommandError, match=r"the source's record is malformed \(JSONDecodeError"):
        call_command("mirror", str(folder))
    assert DailyManifest.objects.count() == 0


def test_a_copy_of_a_copy_still_names_and_links_the_first_origin(
    downloaded: tuple[Path, dict[str, list[tuple[object, ...]]]], tmp_path: Path
) -> None:
    folder, origin = downloaded
    call_command("mirror", str(folder))
    download(second := tmp_path / "from-the-copy")  # what a copy serves at its /publications/
    forget_everything()

    call_command("mirror", str(second))

    assert json.loads((second / "index.json").read_text())["record_of"] == "https://origin.example"
    assert Mirror.objects.get().origin == "https://origin.example"
    assert record_of_origin() == origin
    assert {copy.mirrored_from.split("/patents/")[0] for copy in Patent.objects.all()} == {"https://origin.example"}
    assert manifests.verify().problems == []
