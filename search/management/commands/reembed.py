"""Recompute every stored document's vectors after the embedding model changed."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from search.models import Patent
from search.publishing import reembed


class Command(BaseCommand):
    help = (
        "Re-embed every stored document (mean vector and passages) with the current embedding model "
        "(EMBEDDING_MODEL). Needed once after the model changed; `serve` runs it when it finds the store's "
        "vectors out of date. Interrupted, it resumes with --after-id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--after-id", type=int, default=0, help="Resume after this document id.")
        parser.add_argument("--batch-size", type=int, default=64)

    def handle(self, *args: Any, after_id: int, batch_size: int, verbosity: int, **options: Any) -> None:
        total = Patent.objects.filter(id__gt=after_id).count()
        with tqdm(total=total, unit="patent", disable=verbosity == 0, file=self.stderr._out) as bar:

            def progress(count: int, last_id: int) -> None:
                bar.update(count)
                bar.set_postfix_str(f"last id {last_id}")

            done = reembed(after_id=after_id, batch_size=batch_size, on_batch=progress)
        self.stdout.write(f"Re-embedded {done:,} documents.")
