import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generation.calibration import bench_gates
from generation.training import EXTRA_CORPUS
from search.importing import SAMPLE_CORPUS, import_patents


class Command(BaseCommand):
    help = (
        "Hold the gates against real patents (both orders) and corrupted ones; prints one JSON line: "
        "real_accepted, real_rejections, corrupt_rejected (kind -> share rejected)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-novelty", action="store_true", help="Text gates only: no store, no embedding (the copy kinds go)."
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the corruptions.")

    def handle(self, *args: Any, no_novelty: bool, seed: int, **options: Any) -> None:
        if not no_novelty:
            # The copies are of stored patents, and each real patent is held against all the others.
            for corpus in (SAMPLE_CORPUS, EXTRA_CORPUS):
                result = import_patents(corpus)
                if result.created:
                    self.stderr.write(f"Imported {result.created} patents of {corpus.parent.name}.")
        self.stdout.write(json.dumps(bench_gates(novelty=not no_novelty, seed=seed)))
