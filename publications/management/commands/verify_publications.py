"""Recompute every published hash, Merkle root, chain link and dump checksum, check every time stamp."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from publications import manifests


class Command(BaseCommand):
    help = (
        "Verify every document's SHA-256, every daily manifest (root, chain, dump) and every RFC 3161 time stamp "
        "of a manifest; list the days an authority has not stamped. Exits 1 on any mismatch."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = manifests.verify()
        for notice in report.notices:
            self.stdout.write(f"Notice: {notice}")
        for problem in report.problems:
            self.stderr.write(problem)
        summary = (
            f"{report.documents:,} documents, {report.manifests:,} daily manifests "
            f"and {report.tokens:,} time stamps checked"
        )
        if report.problems:
            raise CommandError(f"{summary}: {len(report.problems)} problem(s)")
        self.stdout.write(f"{summary}: all hashes, roots, chain links and time stamps match.")
