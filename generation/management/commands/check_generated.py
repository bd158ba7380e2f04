import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.calibration import Case, judge


class Command(BaseCommand):
    help = (
        "Run the publication gates on generated texts from anywhere. FILE.jsonl has one "
        '{"text": ..., "finished": true|false} per line, as the model wrote it; prints one JSON line per text.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--no-novelty", action="store_true", help="Text gates only, without the store.")

    def handle(self, *args: Any, file: Path, no_novelty: bool, **options: Any) -> None:
        cases = []
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                cases.append(Case(str(item["text"]), finished=bool(item.get("finished", True))))
            except (ValueError, KeyError, TypeError) as error:
                expected = '{"text": ..., "finished": ...}'
                raise CommandError(f"{file}, line {number}: expected {expected} ({error})") from None
        for judgement in judge(cases, novelty=not no_novelty):
            record = {"accepted": judgement.accepted, "reasons": judgement.reasons, "score": judgement.score}
            self.stdout.write(json.dumps({**record, "title": judgement.title}))
