"""Scale benchmark: a synthetic corpus of N documents, index build time, latencies and recall."""

import json
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.test import override_settings

from search import searching
from search.benchmarks import speed, synthetic, worst
from search.embedding import embed_query
from search.searching import Filters

BUILD_KEYS = ("load_seconds", "index_seconds", "build_seconds")


class Command(BaseCommand):
    help = (
        "Load N synthetic patent-like documents into their own database (bench_search_N), build the indexes and "
        "report latencies and recall. The last line is one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--docs", type=int, default=100_000)
        parser.add_argument("--queries", type=int, default=100, help="Queries per measurement.")
        parser.add_argument("--reload", action="store_true", help="Rebuild the corpus even if it is already loaded.")
        parser.add_argument("--seed", type=int, default=0)

    # Every query is embedded as if for the first time: the cost measured includes the forward pass.
    @override_settings(QUERY_VECTOR_CACHE_SECONDS=0)
    def handle(self, *args: Any, docs: int, queries: int, reload: bool, seed: int, **options: Any) -> None:
        result: dict[str, Any] = {"docs": docs}
        pool = synthetic.SentencePool.load(Path(settings.VAR_DIR) / "bench")
        build_record = Path(settings.VAR_DIR) / "bench" / f"build-{docs}.json"
        speed.use_database(f"bench_search_{docs}")

        if reload or speed.document_count() != docs:
            speed.reset()
            self.stderr.write(f"Loading {docs:,} synthetic documents…")
            result["load_seconds"] = round(speed.load(pool, docs, seed=seed), 1)
            self.stderr.write(f"Loaded in {result['load_seconds']} s; building indexes…")
            timings = speed.build_indexes()
            result["index_seconds"] = {name: round(seconds, 1) for name, seconds in timings.items()}
            result["build_seconds"] = round(result["load_seconds"] + sum(timings.values()), 1)
            build_record.write_text(json.dumps({key: result[key] for key in BUILD_KEYS}))
        else:
            self.stderr.write(f"Corpus already loaded (use --reload to rebuild); build times from {build_record}.")
            recorded = json.loads(build_record.read_text()) if build_record.exists() else {}
            result |= {key: recorded.get(key) for key in BUILD_KEYS} | {"build_measured_in_earlier_run": True}
        result["sizes"] = speed.index_sizes()

        texts = speed.fulltext_queries(pool, queries)
        fulltext = speed.timed([lambda q=q: searching.search(q, mode="fulltext", limit=10) for q in texts])
        result |= {"fulltext_p50_ms": fulltext.p50, "fulltext_p95_ms": fulltext.p95}
        common = speed.timed(
            [lambda q=q: searching.search(q, mode="fulltext", limit=10) for q in speed.FULLTEXT_QUERIES]
        )
        result |= {"fulltext_common_p50_ms": common.p50, "fulltext_common_p95_ms": common.p95}

        vectors = speed.query_vectors(pool, queries)
        semantic = speed.timed([lambda v=v: searching.semantic_ranking(v, Filters(), depth=10) for v in vectors])
        result |= {"semantic_p50_ms": semantic.p50, "semantic_p95_ms": semantic.p95}
        found = [[pk for pk, _ in searching.semantic_ranking(v, Filters(), depth=10)] for v in vectors]
        truth = [speed.exact_neighbours(v, Filters()) for v in vectors]
        result["semantic_recall_at_10"] = round(
            float(np.mean([speed.recall(f, t) for f, t in zip(found, truth, strict=True)])), 4
        )
        # The whole-document path semantic search used before passages, on the same corpus and queries.
        whole = speed.timed([lambda v=v: searching.nearest_documents(v, Filters(), depth=10) for v in vectors])
        result |= {"semantic_mean_vector_p50_ms": whole.p50, "semantic_mean_vector_p95_ms": whole.p95}

        plain = speed.plain_queries(pool, queries)
        embedding = speed.timed([lambda q=q: embed_query(q) for q in plain])
        result["query_embedding_p50_ms"] = embedding.p50
        hybrid = speed.timed([lambda q=q: searching.search(q, mode="hybrid", limit=10) for q in plain])
        result |= {"hybrid_p50_ms": hybrid.p50, "hybrid_p95_ms": hybrid.p95}

        filtered = vectors[: max(10, queries // 3)]
        for selectivity, key in ((0.01, "1pct"), (0.10, "10pct")):
            value, timing = speed.filtered_recall(filtered, selectivity)
            result[f"filtered_recall_{key}"] = value
            result[f"filtered_{key}_p95_ms"] = timing.p95
        # The same 1% filter forced through the HNSW iterative scan instead of exact distances.
        exact_rows = searching.EXACT_SEARCH_ROWS
        searching.EXACT_SEARCH_ROWS = 0
        try:
            value, timing = speed.filtered_recall(filtered, 0.01)
        finally:
            searching.EXACT_SEARCH_ROWS = exact_rows
        result |= {"filtered_recall_1pct_hnsw_only": value, "filtered_1pct_hnsw_only_p95_ms": timing.p95}
        # The costliest queries the limits allow (search/benchmarks/worst.py), slowest first.
        result["worst_queries"] = worst.measure()

        self.stdout.write(json.dumps(result))
