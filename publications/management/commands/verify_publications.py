"""Recompute every published hash, Merkle root, chain link and dump checksum, check every time stamp."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from publications import findability, manifests


class Command(BaseCommand):
    help = (
        "Verify every document's SHA-256, every daily manifest (root, chain, dump) and every RFC 3161 time stamp "
        "of a manifest; list the days an authority has not stamped. Exits 1 on any mismatch. With --findability, "
        "check instead that sampled documents are found by search and linked from the sitemap and browse pages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--findability",
            action="store_true",
            help=f"Sample published documents and check that each is in the top {findability.TOP} of our own "
            "search for the distinctive words of its title and claim 1, in the sitemap, and linked from its "
            f"day's browse page. Prints the misses, then one JSON line; exits 1 below {findability.GOAL:.0%}%.",
        )
        parser.add_argument("--days", type=int, default=7, help="Sample from every day of the last N (default 7).")
        parser.add_argument("--share", type=float, default=0.01, help="Share of each day sampled (default 0.01).")
        parser.add_argument("--minimum", type=int, default=100, help="Documents sampled at least (default 100).")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the sample (default 0).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["findability"]:
            self._findability(options)
            return
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

    def _findability(self, options: dict[str, Any]) -> None:
        report = findability.check(
            days=options["days"], share=options["share"], minimum=options["minimum"], seed=options["seed"]
        )
        for miss in report.misses:
            self.stdout.write(f"Miss: {miss}")
        self.stdout.write(json.dumps(report.summary()))
        if report.share < findability.GOAL:
            raise CommandError(
                f"{report.share:.1%} of {report.checked} sampled documents found, below {findability.GOAL:.0%}"
            )
