"""Build or bring up to date a read-only copy of another installation's published record."""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from publications import mirroring


class Command(BaseCommand):
    help = (
        "Copy the published days of another installation into this (empty, or already mirroring) one: the same "
        "ids, texts and hashes, the origin's publication dates, its manifests, dumps and time stamps, each day "
        "verified (hashes, Merkle root, chain link, time stamps) before anything of it is stored. Run it again to "
        "copy what is new; it resumes after the last day stored. Exits 1 at the first day that does not check out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "source",
            help="The origin's base URL (https://example.org), or a folder laid out like its /publications/: "
            "index.json, and per day <date>/manifest.json, <date>/documents.jsonl.gz, <date>/manifest.json.*.tsr.",
        )

    def handle(self, *args: Any, source: str, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        try:
            report = mirroring.sync(source)
        except mirroring.MirrorError as error:
            raise CommandError(f"Stopped: {error}. The days before it are stored; run it again to resume.") from error
        for line in report.lines:
            self.stdout.write(line)
        self.stdout.write(
            f"Mirror of {report.origin}: {report.days} new day(s), {report.documents} document(s), "
            f"{report.withdrawn} withdrawal(s), {report.tokens} time stamp(s); {report.already} day(s) already "
            "up to date."
        )
