"""Migrations build the store: extensions, indexes and triggers, and none is missing."""

import pytest
from django.core.management import call_command
from django.db import connection

from search.models import Patent

pytestmark = pytest.mark.django_db


def test_vector_extension_is_installed() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
    assert version.split(".")[:2] >= ["0", "8"]


def test_search_indexes_exist() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'search_patent'")
        indexes = dict(cursor.fetchall())
    assert "USING hnsw (((embedding)::halfvec(384)) halfvec_cosine_ops)" in indexes["patent_embedding_half_hnsw"]
    assert "patent_embedding_hnsw" not in indexes
    assert "USING gin (search_vector)" in indexes["patent_search_vector_gin"]


def test_semantic_order_is_the_half_precision_graphs() -> None:
    # The graph is over an expression: the query must order by the very same one for the planner to use it.
    nearest = Patent.objects.semantic([0.1] * 384).values_list("id", "distance")[:10]
    sql, parameters = nearest.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, parameters)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Index Scan using patent_embedding_half_hnsw on search_patent" in plan


def test_publication_triggers_exist() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'search_patent'::regclass AND NOT tgisinternal ORDER BY 1"
        )
        triggers = [name for (name,) in cursor.fetchall()]
    assert triggers == [
        "search_patent_collect_terms",
        "search_patent_immutable",
        "search_patent_require_tombstone",
        "search_patent_stamp",
    ]


def test_models_and_migrations_agree() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
