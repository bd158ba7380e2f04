"""Daily manifests: Merkle roots, the hash chain, dumps, and verify_publications catching tampering."""

import datetime
import gzip
import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from publications import manifests, merkle
from publications.models import DailyManifest
from search.models import Patent

pytestmark = pytest.mark.django_db


def test_merkle_root_follows_rfc_6962() -> None:
    a, b, c = (merkle.leaf(f"ATP-{n}", "0" * 64) for n in (1, 2, 3))

    def node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    assert merkle.root([]) == hashlib.sha256(b"").hexdigest()
    assert merkle.root([a]) == a.hex()
    assert merkle.root([a, b]) == node(a, b).hex()
    assert merkle.root([a, b, c]) == node(node(a, b), c).hex()
    assert a == hashlib.sha256(b"\x00ATP-1 " + b"0" * 64).digest()


def today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def test_a_manifest_lists_the_days_documents_and_chains_to_the_day_before(imported: dict[str, Patent]) -> None:
    yesterday = DailyManifest.objects.create(
        date=today() - datetime.timedelta(days=1), count=0, merkle_root=merkle.EMPTY_ROOT, manifest="{}",
        manifest_sha256=hashlib.sha256(b"{}").hexdigest(), dump_sha256="",
    )  # fmt: skip

    manifest = manifests.build(today())

    document = json.loads(manifest.manifest)
    patents = sorted(imported.values(), key=lambda patent: patent.pk)
    assert document["documents"] == [{"id": p.public_id, "sha256": p.sha256} for p in patents]
    assert document["merkle_root"] == merkle.root([merkle.leaf(p.public_id, p.sha256) for p in patents])
    assert (document["previous_root"], document["previous_manifest_sha256"]) == (
        yesterday.merkle_root,
        yesterday.manifest_sha256,
    )
    dump = manifests.dump_path(today()).read_bytes()
    assert hashlib.sha256(dump).hexdigest() == document["dump_sha256"]
    records = [json.loads(line) for line in gzip.decompress(dump).splitlines()]
    assert [record["sha256"] for record in records] == [p.sha256 for p in patents]
    # Built twice from the same documents, a dump has the same bytes.
    assert manifests._dump(today(), "http://localhost:8000") == dump


def test_verify_publications_passes_then_catches_a_tampered_row(imported: dict[str, Patent], capsys: object) -> None:
    manifests.build(today())
    call_command("verify_publications")

    truck = imported["US11147202B2"]
    with connection.cursor() as cursor:
        # What someone with database access could do, bypassing the immutability trigger.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE search_patent SET text = text || ' (edited)' WHERE id = %s", [truck.pk])
        cursor.execute("SET session_replication_role = DEFAULT")

    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_publications")
    assert f"{truck.public_id}: the text does not match its published SHA-256" in capsys.readouterr().err


def test_verify_publications_catches_a_rewritten_manifest(imported: dict[str, Patent]) -> None:
    manifest = manifests.build(today())
    DailyManifest.objects.filter(pk=manifest.pk).update(merkle_root="0" * 64)

    report = manifests.verify()

    assert report.problems == [f"manifest {today()}: the Merkle root of that day's documents differs"]


def test_manifest_and_dump_urls(client: Client, imported: dict[str, Patent]) -> None:
    manifest = manifests.build(today() - datetime.timedelta(days=1))  # an empty day before the first publication

    response = client.get(f"/publications/{manifest.date}/manifest.json")

    assert response.json()["count"] == 0
    assert response["ETag"] == f'"{manifest.manifest_sha256}"'
    assert client.get(f"/publications/{today()}/manifest.json").status_code == 404  # the day is not over
