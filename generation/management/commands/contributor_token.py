from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.models import Contributor


class Command(BaseCommand):
    help = "Issue a contributor token (printed once), or --revoke one by its prefix."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="", help="The contributor's public name; empty for anonymous.")
        parser.add_argument("--revoke", metavar="PREFIX", help="Revoke the token that starts with PREFIX.")

    def handle(self, *args: Any, **options: Any) -> None:
        if prefix := options["revoke"]:
            matches = Contributor.objects.filter(token_prefix__startswith=prefix[:12], revoked_at=None)
            if matches.count() != 1:
                raise CommandError(f"{matches.count()} active tokens start with {prefix!r}; give more of it.")
            contributor = matches.get()
            contributor.revoke()
            self.stdout.write(f"Revoked the token of {contributor}.")
            return
        contributor, token = Contributor.issue(display_name=options["name"])
        self.stdout.write(token)
