"""OpenTimestamps proofs of the daily manifests, against calendars on loopback that speak the calendar protocol."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from publications import manifests, ots
from publications.models import OpenTimestampsProof
from search.models import Patent
from tests.ots_calendar import Calendar

pytestmark = pytest.mark.django_db


@pytest.fixture
def calendars(settings: SettingsWrapper) -> Iterator[list[Calendar]]:
    started = [Calendar(), Calendar()]
    settings.OTS_CALENDARS = [calendar.url for calendar in started]
    yield started
    for calendar in started:
        calendar.stop()


def yesterday() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)


def built_day(settings: SettingsWrapper) -> datetime.date:
    calendars, settings.OTS_CALENDARS = settings.OTS_CALENDARS, []  # nothing sent to the broker by the build
    manifests.build(yesterday())
    settings.OTS_CALENDARS = calendars
    return yesterday()


def test_a_manifest_is_submitted_to_every_calendar_then_completed_once_its_block_is_mined(
    calendars: list[Calendar], settings: SettingsWrapper, imported: dict[str, Patent]
) -> None:
    day = built_day(settings)

    pending = ots.anchor(day)

    assert (pending.bitcoin_height, pending.attempts) == (None, 1)
    assert [calendar.requests for calendar in calendars] == [["POST /digest"], ["POST /digest"]]
    proof = ots.deserialize(bytes(pending.proof))
    assert proof.file_digest == hashlib.sha256(pending.manifest.manifest.encode()).digest()
    assert sorted(a.uri for _, a in proof.timestamp.all_attestations()) == sorted(c.url for c in calendars)

    still = ots.anchor(day)  # asked again before the block: still pending, the calendars' answer recorded
    assert still.bitcoin_height is None
    assert "Pending confirmation in Bitcoin blockchain" in still.last_error
    calendars[1].mine(height=871234)

    complete = ots.anchor(day)

    assert complete.bitcoin_height == 871234
    assert complete.next_attempt_at is None
    assert ots.bitcoin_heights(ots.deserialize(bytes(complete.proof))) == [871234]
    assert ots.due() == []
    problems, notices = ots.verify()
    assert problems == []
    assert notices == [
        f"OpenTimestamps proof of {day}: attested in Bitcoin block 871234; the block header is not checked here "
        "(`ots verify manifest.json.ots` on a machine with a Bitcoin node does)"
    ]


def test_the_proof_is_served_in_the_standard_format_and_the_days_page_names_its_block(
    calendars: list[Calendar], settings: SettingsWrapper, imported: dict[str, Patent], tmp_path: Path
) -> None:
    day = built_day(settings)
    ots.anchor(day)
    calendars[0].mine(height=5)
    ots.anchor(day)
    client = Client()

    response = client.get(f"/publications/{day}/manifest.json.ots")
    page = client.get(f"/browse/{day:%Y/%m/%d}/").content.decode()

    assert response["Content-Type"] == "application/vnd.opentimestamps.v1"
    # The detached-file magic header that `ots info` and `ots verify` look for.
    assert response.content.startswith(b"\x00OpenTimestamps\x00\x00Proof\x00\xbf\x89\xe2\xe8\x84\xe8\x92\x94")
    assert "Anchored in <strong>Bitcoin block 5</strong> by OpenTimestamps" in page


def test_calendars_that_are_down_are_asked_again_with_backoff_and_the_day_says_so(
    settings: SettingsWrapper, imported: dict[str, Patent]
) -> None:
    from tests.tsa import closed_port_url

    settings.OTS_CALENDARS = [closed_port_url()]
    day = built_day(settings)

    row = ots.anchor(day)

    assert (row.proof, row.attempts) == (None, 1)
    assert "Connection refused" in row.last_error
    assert ots.due() == []  # not before its next attempt
    assert ots.due(now=row.next_attempt_at + datetime.timedelta(seconds=1)) == [day]
    page = Client().get(f"/browse/{day:%Y/%m/%d}/").content.decode()
    assert "Not yet submitted to OpenTimestamps: 1 attempt" in page


def test_verify_publications_fails_on_a_proof_of_another_hash(
    calendars: list[Calendar], settings: SettingsWrapper, imported: dict[str, Patent]
) -> None:
    day = built_day(settings)
    row = ots.anchor(day)
    proof, _ = ots.submit("another manifest")
    OpenTimestampsProof.objects.filter(pk=row.pk).update(proof=ots.serialize(proof))

    with pytest.raises(Exception, match="1 problem"):
        call_command("verify_publications")
    assert ots.verify()[0] == [f"OpenTimestamps proof of {day}: it commits to another hash than the manifest's"]


def test_the_ots_client_reads_the_served_proof_and_follows_it_to_its_block(
    calendars: list[Calendar], settings: SettingsWrapper, imported: dict[str, Patent], tmp_path: Path
) -> None:
    """Offline, as far as it goes: the client parses our file and walks it to its block; a block needs a node."""
    day = built_day(settings)
    ots.anchor(day)
    calendars[0].mine(height=871234)
    ots.anchor(day)
    client = Client()
    (tmp_path / "manifest.json").write_bytes(client.get(f"/publications/{day}/manifest.json").content)
    (tmp_path / "manifest.json.ots").write_bytes(client.get(f"/publications/{day}/manifest.json.ots").content)

    def run_ots(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "ots"), *arguments]  # opentimestamps-client
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    info = run_ots("info", "manifest.json.ots")
    verify = run_ots("--no-bitcoin", "verify", "manifest.json.ots")

    assert info.returncode == 0, info.stderr
    manifest_hash = hashlib.sha256((tmp_path / "manifest.json").read_bytes()).hexdigest()
    assert info.stdout.splitlines()[0] == f"File sha256 hash: {manifest_hash}"
    assert "verify BitcoinBlockHeaderAttestation(871234)" in info.stdout
    # Without a Bitcoin node the client stops at the block and says what to compare there: the
    # merkle root the calendar put in it.
    (commitment,) = calendars[0].mined
    merkle_root = hashlib.sha256(b"\x01" * 32 + commitment).digest()[::-1].hex()
    assert verify.stderr.splitlines()[-1] == (
        f"To verify manually, check that Bitcoin block 871234 has merkleroot {merkle_root}"
    )
