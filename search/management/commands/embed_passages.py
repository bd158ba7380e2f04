"""Embed the passages of documents stored before passage-level search (a one-off after upgrading)."""

from typing import Any

from django.core.management.base import BaseCommand

from search.publishing import embed_missing_passages


class Command(BaseCommand):
    help = (
        "Embed the passages of every stored document that has none, for passage-level semantic search. "
        "Needed once on a store filled before passages were kept; resumable."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Embedded the passages of {embed_missing_passages():,} documents.")
