"""Search quality: a known-item evaluation on the bundled real patents, with a BM25 baseline."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.benchmarks import relevance
from search.models import Patent


class Command(BaseCommand):
    help = (
        "Known-item evaluation on the imported sample: recall@10 and MRR of full-text, semantic and hybrid "
        "search and of a BM25 baseline, per kind of query. The last line is one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--documents", type=int, default=None, help="Evaluate the first N documents only.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--half",
            choices=(*relevance.HALVES, "all"),
            default="all",
            help="Only the queries of one half of the documents: the fusion is tuned on 'tune', reported on 'test'.",
        )

    def handle(self, *args: Any, documents: int | None, seed: int, half: str, **options: Any) -> None:
        if not Patent.objects.filter(embedding__isnull=False).exists():
            raise CommandError("No embedded documents: run `manage.py import_patents` first.")
        bm25 = relevance.BM25(relevance.indexed_lexemes())
        items = relevance.known_items(bm25, seed=seed)
        if half != "all":
            items = [item for item in items if item.half == half]
        if documents:
            targets = sorted({item.target for item in items})[:documents]
            items = [item for item in items if item.target in set(targets)]
        lexemes = dict(
            zip([item.query for item in items], relevance.query_lexemes([i.query for i in items]), strict=True)
        )
        methods = {
            "bm25": lambda query: bm25.rank(lexemes[query]),
            "fulltext": relevance.site_method("fulltext"),
            "semantic": relevance.site_method("semantic"),
            "hybrid": relevance.site_method("hybrid"),
            "hybrid_rrf": relevance.hybrid_by_rrf,
        }
        self.stderr.write(f"{len(items):,} queries over {len({item.target for item in items}):,} documents…")
        scores = relevance.evaluate(items, methods)
        result: dict[str, Any] = {"queries": len(items), "documents": len(bm25.documents)}
        for name, by_kind in scores.items():
            for kind, score in by_kind.items():
                result[f"{name}_{kind}_recall_at_10"] = score.recall_at_10
                result[f"{name}_{kind}_mrr"] = score.mrr
            result[f"{name}_errors"] = by_kind["all"].errors
            self.stderr.write(
                f"{name:>9}: recall@10 {by_kind['all'].recall_at_10:.3f}  MRR {by_kind['all'].mrr:.3f}  "
                + "  ".join(
                    f"{kind} {by_kind[kind].recall_at_10:.3f}/{by_kind[kind].mrr:.3f}" for kind in relevance.KINDS
                )
            )
        self.stdout.write(json.dumps(result))
