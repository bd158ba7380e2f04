"""RFC 3161 time stamps of the daily manifests, against real authorities (openssl ts) on loopback."""

from __future__ import annotations

import datetime
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from publications import manifests, timestamps
from publications.models import DailyManifest, ManifestTimestamp
from search.models import Patent
from tests.conftest import start_worker, stop_worker
from tests.tsa import TimeStampingAuthority, closed_port_url

pytestmark = pytest.mark.django_db


def yesterday() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)


@pytest.fixture
def authorities() -> Iterator[list[TimeStampingAuthority]]:
    started = [TimeStampingAuthority("First TSA"), TimeStampingAuthority("Second TSA")]
    yield started
    for authority in started:
        authority.stop()


def trust(settings: SettingsWrapper, tmp_path: Path, *trusted: TimeStampingAuthority) -> None:
    bundle = tmp_path / "tsa-certificates.pem"
    bundle.write_bytes(b"".join(authority.ca_file.read_bytes() for authority in trusted))
    settings.TSA_CA_FILE = str(bundle)


@pytest.fixture
def authority(
    authorities: list[TimeStampingAuthority], settings: SettingsWrapper, tmp_path: Path
) -> TimeStampingAuthority:
    """One authority, the only one configured, and trusted."""
    settings.TSA_URLS = [authorities[0].url]
    trust(settings, tmp_path, authorities[0])
    return authorities[0]


def verify() -> str:
    """verify_publications' output; raises CommandError as the command exits 1."""
    output = []

    class Collect:
        def write(self, text: str) -> None:
            output.append(text)

        def flush(self) -> None:
            pass

    call_command("verify_publications", stdout=Collect(), stderr=Collect())
    return "".join(output)


def test_a_built_manifest_is_stamped_by_each_authority_and_openssl_verifies_the_served_token(
    imported: dict[str, Patent],
    authorities: list[TimeStampingAuthority],
    settings: SettingsWrapper,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
) -> None:
    settings.TSA_URLS = [authority.url for authority in authorities]
    trust(settings, tmp_path, *authorities)

    with django_capture_on_commit_callbacks() as callbacks:
        manifest = manifests.build(yesterday())
    assert len(callbacks) == 1  # the stamps are sent to a worker after the commit, not waited for
    for authority in authorities:
        timestamps.stamp(manifest.date, authority.url)

    stamps = list(ManifestTimestamp.objects.filter(manifest=manifest).order_by("authority"))
    assert [stamp.attempts for stamp in stamps] == [1, 1]
    assert all(timezone.now() - stamp.stamped_at < datetime.timedelta(minutes=1) for stamp in stamps)
    client = Client()
    (tmp_path / "manifest.json").write_bytes(client.get(manifest.get_absolute_url()).content)
    for stamp, authority in zip(stamps, sorted(authorities, key=lambda a: a.url), strict=True):
        response = client.get(stamp.get_absolute_url())
        assert (response.status_code, response["Content-Type"]) == (200, "application/timestamp-reply")
        assert response.content == bytes(stamp.token)
        (tmp_path / "token.tsr").write_bytes(response.content)
        checked = subprocess.run(
            ["openssl", "ts", "-verify", "-in", tmp_path / "token.tsr", "-data", tmp_path / "manifest.json",
             "-CAfile", authority.ca_file],
            capture_output=True, text=True,
        )  # fmt: skip
        assert checked.stdout.strip() == "Verification: OK"
    day_page = client.get(f"/browse/{manifest.date:%Y/%m/%d}/").content.decode()
    assert day_page.count("Time-stamped by <strong>127.0.0.1:") == 2
    assert verify().splitlines()[-1] == (
        f"{len(imported)} documents, 1 daily manifests and 2 time stamps checked: "
        "all hashes, roots, chain links and time stamps match."
    )


def test_an_authority_that_is_down_is_asked_again_with_growing_backoff_and_the_day_is_reported(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    down = closed_port_url()
    settings.TSA_URLS = [down]
    settings.TSA_CA_FILE = ""
    manifests.build(yesterday())

    first = timestamps.stamp(yesterday(), down)
    now = timezone.now()
    assert (first.token, first.attempts) == (None, 1)
    assert first.last_error.startswith("no answer:")
    assert timestamps.due(now) == []
    assert timestamps.due(now + datetime.timedelta(minutes=2)) == [(yesterday(), down)]
    second = timestamps.stamp(yesterday(), down)
    assert second.next_attempt_at - timezone.now() > datetime.timedelta(minutes=1, seconds=50)
    output = verify()  # a missing token is reported, not a mismatch: exit 0
    assert f"Notice: manifest {yesterday()}: no time stamp by {down} (2 attempt(s), last: no answer:" in output
    day_page = Client().get(f"/browse/{yesterday():%Y/%m/%d}/").content.decode()
    assert "Not yet time-stamped by <strong>127.0.0.1:" in day_page
    assert "2 attempts" in day_page


def test_the_sweep_finds_days_never_asked_and_the_page_lists_them(settings: SettingsWrapper) -> None:
    settings.TSA_URLS = ["https://tsa.example/tsr"]
    manifests.build(yesterday())

    assert timestamps.due() == [(yesterday(), "https://tsa.example/tsr")]
    day_page = Client().get(f"/browse/{yesterday():%Y/%m/%d}/").content.decode()
    assert "Not yet time-stamped by <strong>tsa.example</strong>: asked for shortly" in day_page


def test_a_token_for_another_hash_is_refused_and_asked_again(settings: SettingsWrapper, tmp_path: Path) -> None:
    wrong = TimeStampingAuthority("Careless TSA", stamps_other_hash=True)
    settings.TSA_URLS = [wrong.url]
    trust(settings, tmp_path, wrong)
    manifests.build(yesterday())

    stamp = timestamps.stamp(yesterday(), wrong.url)

    assert (stamp.token, stamp.last_error) == (
        None,
        "the token was refused: it stamps another hash than the manifest's",
    )
    assert wrong.requests == 1
    wrong.stop()


@pytest.mark.parametrize(
    ("expired", "trusted_ca"),
    [(True, True), (False, False)],
    ids=["certificate-expired-before-the-stamp", "untrusted-authority"],
)
def test_a_token_that_does_not_chain_to_a_certificate_trusted_and_valid_at_the_stamp_is_refused(
    expired: bool, trusted_ca: bool, settings: SettingsWrapper, tmp_path: Path
) -> None:
    signer = TimeStampingAuthority("Signing TSA", expired=expired)
    other = TimeStampingAuthority("Other TSA")
    settings.TSA_URLS = [signer.url]
    trust(settings, tmp_path, signer if trusted_ca else other)
    manifests.build(yesterday())

    stamp = timestamps.stamp(yesterday(), signer.url)

    assert stamp.token is None
    assert stamp.last_error.startswith("the token was refused: Error while verifying certificates")
    for started in (signer, other):
        started.stop()


def test_verify_publications_fails_on_a_token_moved_to_another_day(
    authority: TimeStampingAuthority,
) -> None:
    earlier = yesterday() - datetime.timedelta(days=1)
    manifests.build(earlier)
    manifests.build(yesterday())
    timestamps.stamp(earlier, authority.url)
    timestamps.stamp(yesterday(), authority.url)
    first, second = ManifestTimestamp.objects.order_by("manifest_id")
    ManifestTimestamp.objects.filter(pk=second.pk).update(token=first.token, stamped_at=first.stamped_at)

    with pytest.raises(CommandError, match="1 problem"):
        verify()
    report = manifests.verify()
    assert report.problems == [
        f"time stamp {yesterday()} by {second.authority_name}: it stamps another hash than the manifest's"
    ]


def test_a_stamp_made_before_the_day_was_over_fails_verification(
    authority: TimeStampingAuthority,
) -> None:
    today = yesterday() + datetime.timedelta(days=1)
    manifests.build(today)  # only the daily job builds finished days; a test can build today's

    stamp = timestamps.stamp(today, authority.url)

    assert stamp.token is not None
    assert manifests.verify().problems == [
        f"time stamp {today} by {stamp.authority_name}: stamped {stamp.stamped_at:%Y-%m-%d %H:%M:%S}Z, "
        "before the day was over"
    ]


def test_without_a_certificate_file_tokens_are_kept_but_reported_as_unchecked(
    authority: TimeStampingAuthority, settings: SettingsWrapper
) -> None:
    settings.TSA_CA_FILE = ""
    manifests.build(yesterday())

    stamp = timestamps.stamp(yesterday(), authority.url)

    assert stamp.token is not None
    assert manifests.verify().problems == [
        f"time stamp {yesterday()} by {stamp.authority_name}: "
        "TSA_CA_FILE is not set, so its signature cannot be checked"
    ]


def test_a_stamp_is_kept_once_and_never_replaced(
    authority: TimeStampingAuthority,
) -> None:
    manifests.build(yesterday())

    first = timestamps.stamp(yesterday(), authority.url)
    again = timestamps.stamp(yesterday(), authority.url)

    assert (bytes(again.token), again.attempts, authority.requests) == (bytes(first.token), 1, 1)
    assert timestamps.due() == []


def test_slugs_name_the_authority_in_its_token_url() -> None:
    assert timestamps.slug("https://freetsa.org/tsr") == "freetsa.org-tsr"
    assert timestamps.slug("http://timestamp.digicert.com") == "timestamp.digicert.com"
    assert timestamps.slug("http://127.0.0.1:8123/tsr") == "127.0.0.1-8123-tsr"


@pytest.mark.slow
def test_a_worker_stamps_each_manifest_it_builds(
    transactional_db: None, settings: SettingsWrapper, tmp_path: Path
) -> None:
    authority = TimeStampingAuthority("Worker TSA")
    settings.TSA_URLS = [authority.url]
    trust(settings, tmp_path, authority)
    worker = start_worker("stamps", TSA_URLS=authority.url, TSA_CA_FILE=settings.TSA_CA_FILE)
    try:
        manifests.build(yesterday())  # commits, then sends the stamp to the worker
        deadline = time.monotonic() + 60
        while not ManifestTimestamp.objects.filter(authority=authority.url, token__isnull=False).exists():
            assert time.monotonic() < deadline, "the worker did not stamp the manifest"
            time.sleep(0.2)
    finally:
        stop_worker(worker)
        authority.stop()
    assert DailyManifest.objects.get().timestamps.get(authority=authority.url).stamped_at is not None
    assert manifests.verify().problems == []
