from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from search.importing import MalformedLine, read_records, save_vectors


class Command(BaseCommand):
    help = (
        "Embed every patent of a JSON Lines file and save the vectors beside it (FILE.vectors.npz), so that "
        "import_patents of that file needs no embedding while the model and the text are the same."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, path: Path, verbosity: int, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            total = sum(1 for _ in read_records(path))
            with tqdm(total=total, unit="patent", disable=verbosity == 0, file=self.stderr._out) as bar:
                output = save_vectors(path, on_batch=bar.update)
        except MalformedLine as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Saved {total} vectors to {output}.")
