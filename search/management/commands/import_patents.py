from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from search.importing import MalformedLine, import_patents


class Command(BaseCommand):
    help = "Import real patents from a JSON Lines file (the format of data/patents-sample/patents.jsonl)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--batch-size", type=int, default=64)

    def handle(self, *args: Any, path: Path, batch_size: int, verbosity: int, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        with path.open(encoding="utf-8") as lines:
            total = sum(1 for line in lines if line.strip())
        with tqdm(total=total, unit="patent", disable=verbosity == 0, file=self.stderr._out) as bar:
            try:
                result = import_patents(path, batch_size=batch_size, on_batch=bar.update)
            except MalformedLine as error:
                raise CommandError(f"Import stopped: {error}") from None
        self.stdout.write(f"Imported {result.created} patents from {path}; {result.skipped} were already stored.")
