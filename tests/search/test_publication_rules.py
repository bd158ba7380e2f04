"""The database keeps published documents immutable and correctly dated, whatever the client."""

import datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from search.documents import sha256_hex
from search.models import Patent, Tombstone
from tests import factories

pytestmark = pytest.mark.django_db


def test_insert_stamps_the_server_clock_even_when_the_client_backdates() -> None:
    before = timezone.now()
    patent = factories.patent(published_at=datetime.datetime(1999, 1, 1, tzinfo=datetime.UTC))
    patent.refresh_from_db()
    assert before <= patent.published_at <= timezone.now()


def test_insert_stores_the_sha256_of_the_canonical_text_whatever_the_client_sent() -> None:
    patent = factories.patent(sha256="0" * 64)
    patent.refresh_from_db()
    assert patent.sha256 == sha256_hex(patent.text)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("title", "'Better widget'"),
        ("abstract", "'Changed.'"),
        ("claims", "'[]'::jsonb"),
        ("text", "'# Patent'"),
        ("sha256", "repeat('f', 64)"),
        ("published_at", "now() - interval '10 years'"),
        ("id", "id + 1000"),
    ],
)
def test_raw_sql_cannot_change_published_text(column: str, value: str) -> None:
    patent = factories.patent()
    with pytest.raises(IntegrityError, match="is immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE search_patent SET {column} = {value} WHERE id = %s", [patent.id])


def test_orm_save_cannot_change_published_text() -> None:
    patent = factories.patent()
    patent.title = "Better widget"
    with pytest.raises(IntegrityError, match="is immutable"), transaction.atomic():
        patent.save()
    assert Patent.objects.get(pk=patent.pk).title == "Widget"


def test_embedding_and_quality_may_change_after_publication() -> None:
    patent = factories.patent()
    Patent.objects.filter(pk=patent.pk).update(quality_score=0.75, quality_flags=["reviewed"], embedding=[0.5] * 384)
    patent.refresh_from_db()
    assert (patent.quality_score, patent.quality_flags) == (0.75, ["reviewed"])


def test_delete_without_a_tombstone_is_refused() -> None:
    patent = factories.patent()
    with pytest.raises(IntegrityError, match="only be withdrawn with a tombstone"), transaction.atomic():
        Patent.objects.filter(pk=patent.pk).delete()
    assert Patent.objects.filter(pk=patent.pk).exists()


def test_withdraw_leaves_a_tombstone_with_the_record() -> None:
    patent = factories.patent()
    number, public_id, published_at, sha256 = patent.id, patent.public_id, patent.published_at, patent.sha256

    patent.withdraw(reason="Duplicate of an earlier publication")

    assert not Patent.objects.filter(pk=number).exists()
    stored = Tombstone.objects.get(pk=number)
    assert (stored.public_id, stored.title, stored.published_at, stored.sha256, stored.reason) == (
        public_id,
        "Widget",
        published_at,
        sha256,
        "Duplicate of an earlier publication",
    )
    assert stored.withdrawn_at >= stored.published_at


def test_public_ids_are_sequential_and_never_reused() -> None:
    first = factories.patent()
    first_id = first.id
    first.withdraw(reason="test")
    second = factories.patent()
    assert second.id > first_id
    assert second.public_id == f"ATP-{second.id:08d}"
