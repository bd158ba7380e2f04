"""Build the daily manifests (and dumps) of finished days not covered yet."""

from typing import Any

from django.core.management.base import BaseCommand

from publications import manifests


class Command(BaseCommand):
    help = "Build the manifest and dump of every finished UTC day that has none yet, oldest first."

    def handle(self, *args: Any, **options: Any) -> None:
        for manifest in manifests.build_missing():
            self.stdout.write(f"{manifest.date}: {manifest.count} documents, root {manifest.merkle_root}")
