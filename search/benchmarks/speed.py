"""The scale benchmark behind `manage.py bench_search`: load a synthetic corpus, build the indexes, time queries.

It runs in its own database (bench_search_<N>), never in the service's, and
measures the same functions the site and the API call.
"""

from __future__ import annotations

import datetime
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from django.core.management import call_command
from django.db import connection, connections
from django.db.models import Model
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from search import searching
from search.benchmarks import synthetic
from search.models import Patent
from search.searching import Filters

# Indexes built after the load, as a bulk load into indexed tables is several times slower.
BULK_INDEXES: dict[type[Model], tuple[str, ...]] = {
    Patent: ("patent_search_vector_gin", "patent_title_abstract_gin", "patent_embedding_half_hnsw"),
}
# Ids are given, so the passages can name their document in the same COPY pass.
COPY_COLUMNS = (
    "id, title, abstract, claims, text, origin, source_id, source_date, cpc, ipc, "
    "model_name, model_revision, prompt_mode, decoding, quality_flags, contributed_by, checks_rerun, mirrored_from, "
    "embedding"
)
COPY_TYPES = [
    "int8", "text", "text", "jsonb", "text", "varchar", "varchar", "date", "varchar[]", "varchar[]",
    "varchar", "varchar", "varchar", "jsonb", "jsonb", "varchar", "jsonb", "varchar", "vector",
]  # fmt: skip
CHUNK = 20_000

# Full-text queries an examiner or a member of the public might type, from very common terms to
# syntax-heavy ones; the rest of the set is rarer keyword pairs taken from the sample's titles.
FULLTEXT_QUERIES = [
    "device",
    "system AND method",
    "wherein",
    "vehicle",
    "battery",
    '"control unit"',
    "sensor ADJ2 signal",
    "housing WITH opening",
    "comput$ AND network",
    "ti:method",
    "fluid NEAR3 pressure",
    "image processing",
    "surgical instrument",
    "light-emitting",
    "data",
    "wireless communication",
    "motor NOT electric",
    "substrate",
    "wheel$ SAME axle",
    "first AND second AND third",
]


def use_database(name: str) -> None:
    """Point the default connection at database `name` (created and migrated if needed)."""
    settings = connection.settings_dict
    with psycopg.connect(**_connect_parameters(settings, "postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    connections.close_all()
    settings["NAME"] = name
    call_command("migrate", verbosity=0)


def _connect_parameters(settings: dict, dbname: str) -> dict:
    parameters = {"dbname": dbname, "user": settings["USER"], "host": settings["HOST"], "port": settings["PORT"]}
    if settings.get("PASSWORD"):
        parameters["password"] = settings["PASSWORD"]
    return parameters


def document_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM search_patent")
        return int(cursor.fetchone()[0])


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE search_patent DISABLE TRIGGER search_patent_require_tombstone")
        cursor.execute("TRUNCATE search_patent, search_searchterm, search_minhashband CASCADE")
        cursor.execute("ALTER TABLE search_patent ENABLE TRIGGER search_patent_require_tombstone")


def load(pool: synthetic.SentencePool, docs: int, *, seed: int = 0, workers: int = 2) -> float:
    """Drop the bulk indexes and COPY `docs` synthetic documents in, `workers` connections at once."""
    with connection.cursor() as cursor:
        for name in (name for names in BULK_INDEXES.values() for name in names):
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    parameters = _connect_parameters(connection.settings_dict, connection.settings_dict["NAME"])
    starts = list(range(0, docs, CHUNK))
    errors: list[BaseException] = []

    def work(share: Sequence[int]) -> None:
        try:
            with psycopg.connect(**parameters) as conn:
                register_vector(conn)
                for start in share:
                    _copy_chunk(conn, pool, start, min(CHUNK, docs - start), seed)
                    conn.commit()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(starts[index::workers],)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('search_patent', 'id'), %s)", [max(docs, 1)])
    return time.perf_counter() - began


def _copy_chunk(conn: psycopg.Connection, pool: synthetic.SentencePool, start: int, count: int, seed: int) -> None:
    patents = list(synthetic.generate(pool, count, seed=seed, start=start))
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY search_patent ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(COPY_TYPES)
        for number, patent in enumerate(patents, start=start + 1):
            copy.write_row(
                (
                    number, patent.title, patent.abstract, Jsonb(patent.claims), patent.text, "reference",
                    patent.source_id, patent.date, patent.cpc, [], "", "", "", Jsonb({}), Jsonb([]), "", Jsonb([]), "",
                    patent.embedding,
                )
            )  # fmt: skip
    with (
        conn.cursor() as cursor,
        cursor.copy("COPY search_patentpassage (patent_id, position, embedding) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int8", "int2", "vector"])
        for number, patent in enumerate(patents, start=start + 1):
            for position, vector in enumerate(patent.passages):
                copy.write_row((number, position, vector))


def build_indexes(*, memory: str = "4GB", parallel_workers: int = 1) -> dict[str, float]:
    """Create the bulk indexes exactly as the model declares them; seconds per index."""
    timings = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SET maintenance_work_mem = '{memory}'")
        cursor.execute(f"SET max_parallel_maintenance_workers = {int(parallel_workers)}")
    for model, names in BULK_INDEXES.items():
        indexes = {index.name: index for index in model._meta.indexes}
        for name in names:
            began = time.perf_counter()
            with connection.schema_editor() as editor:
                editor.add_index(model, indexes[name])
            timings[name] = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE search_patent")
        cursor.execute("VACUUM ANALYZE search_patentpassage")
    return timings


def index_sizes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_size_pretty(pg_relation_size(oid)) FROM pg_class WHERE relname = ANY(%s)",
            [[*(name for names in BULK_INDEXES.values() for name in names), "search_patent", "search_patentpassage"]],
        )
        return dict(cursor.fetchall())


@dataclass
class Timing:
    milliseconds: list[float]

    @property
    def p50(self) -> float:
        return round(statistics.median(self.milliseconds), 2)

    @property
    def p95(self) -> float:
        ordered = sorted(self.milliseconds)
        return round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2)


def timed(calls: Sequence[Callable[[], object]], *, warmup: bool = True) -> Timing:
    if warmup:
        for call in calls:
            call()
    milliseconds = []
    for call in calls:
        began = time.perf_counter()
        call()
        milliseconds.append((time.perf_counter() - began) * 1000)
    return Timing(milliseconds)


def fulltext_queries(pool: synthetic.SentencePool, count: int, seed: int = 1) -> list[str]:
    """The fixed set plus rarer two-word queries from sample titles (the same ones for the same seed)."""
    random = np.random.default_rng(seed)
    queries = list(FULLTEXT_QUERIES)
    while len(queries) < count:
        words = [word for word in pool.records[int(random.integers(len(pool.records)))].title.split() if len(word) > 4]
        if len(words) >= 2:
            queries.append(" ".join(words[:2]).lower())
    return queries[:count]


def plain_queries(pool: synthetic.SentencePool, count: int, seed: int = 2) -> list[str]:
    """Plain-language queries: the first words of real abstract sentences."""
    random = np.random.default_rng(seed)
    queries = []
    while len(queries) < count:
        sentences = pool.sentences[int(random.integers(len(pool.sentences)))]
        queries.append(" ".join(sentences[0].split()[:8]))
    return queries


def query_vectors(pool: synthetic.SentencePool, count: int, seed: int = 999) -> np.ndarray:
    """Vectors of synthetic documents that are not in the corpus, as "find documents like this one" gives.

    (Single sample sentences make poor queries here: each is part of
    hundreds of synthetic documents, all about equally near, so "the" top
    ten is a coin toss among ties.)
    """
    return np.stack([patent.embedding for patent in synthetic.generate(pool, count, seed=seed, start=10**9)])


def exact_neighbours(vector: np.ndarray, filters: Filters, k: int = 10) -> list[int]:
    """What semantic search would return with exact distances: the documents nearest by mean vector
    computed without the index, ranked by their best passage.

    (Not the nearest passages over the whole corpus: here every passage is a shared sample sentence
    plus noise, so those are hundreds of near-ties, a coin toss among documents sharing one sentence.)
    """
    patents = filters.apply(Patent.objects.filter(embedding__isnull=False))
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL enable_indexscan = off")
        candidates = [
            (patent_id, 1.0 - float(distance))
            for patent_id, distance in patents.semantic(vector, exact=True).values_list("id", "distance")[
                : searching.RERANKED_CANDIDATES
            ]
        ]
        cursor.execute("COMMIT")
    return [patent_id for patent_id, _ in searching.by_best_passage(vector, candidates)[:k]]


def recall(found: Sequence[int], truth: Sequence[int]) -> float:
    return len(set(found) & set(truth)) / len(truth) if truth else 1.0


def date_window(selectivity: float, random: np.random.Generator) -> Filters:
    """A publication-date window holding about `selectivity` of the synthetic corpus."""
    days = max(1, int(synthetic.DATE_SPAN_DAYS * selectivity))
    start = synthetic.FIRST_DATE + datetime.timedelta(days=int(random.integers(synthetic.DATE_SPAN_DAYS - days)))
    return Filters(after=start - datetime.timedelta(days=1), before=start + datetime.timedelta(days=days))


def filtered_recall(vectors: np.ndarray, selectivity: float, *, seed: int = 4) -> tuple[float, Timing]:
    random = np.random.default_rng(seed)
    recalls, milliseconds = [], []
    for vector in vectors:
        filters = date_window(selectivity, random)
        began = time.perf_counter()
        found = [patent_id for patent_id, _ in searching.semantic_ranking(vector, filters, depth=10)]
        milliseconds.append((time.perf_counter() - began) * 1000)
        recalls.append(recall(found, exact_neighbours(vector, filters)))
    return round(float(np.mean(recalls)), 4), Timing(milliseconds)
