"""Recompute every published hash, Merkle root, chain link and dump checksum; report any mismatch."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from publications import manifests


class Command(BaseCommand):
    help = "Verify every document's SHA-256 and every daily manifest (root, chain, dump). Exits 1 on any mismatch."

    def handle(self, *args: Any, **options: Any) -> None:
        report = manifests.verify()
        for problem in report.problems:
            self.stderr.write(problem)
        summary = f"{report.documents:,} documents and {report.manifests:,} daily manifests checked"
        if report.problems:
            raise CommandError(f"{summary}: {len(report.problems)} problem(s)")
        self.stdout.write(f"{summary}: all hashes, roots and chain links match.")
