"""`manage.py fuzz_site`: thousands of generated requests to every URL; none may answer 5xx."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings
from tqdm import tqdm

from allpatents import fuzzing, load


class Command(BaseCommand):
    help = (
        "Send COUNT generated requests (examiners' syntax, any text, raw bytes, ids, dates and pages for every URL) "
        "to the site in this process, then run schemathesis with every check against /api/schema on a production "
        "server. Prints one JSON line; exits 1 on any answer of 500 or more or a schemathesis failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=10_000)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--schemathesis-examples", type=int, default=100, help="Per API operation; 0 skips it.")

    def handle(self, *args: Any, count: int, seed: int, schemathesis_examples: int, verbosity: int, **options: Any):
        # The pages are rendered as production renders them (DEBUG off), with hashed static file names:
        # without the manifest collectstatic writes, every page would be a 500 of our own making.
        call_command("collectstatic", interactive=False, verbosity=0)
        # Thousands of 404s and 400s are the point; only server errors are worth a log line.
        logging.getLogger("django.request").setLevel(logging.ERROR)
        with (
            tqdm(total=count, unit="request", disable=verbosity == 0, file=self.stderr._out) as bar,
            # One client sends everything: no rate limit, and the answers a visitor would get (no debug pages).
            override_settings(DEBUG=False, **{name: "1000000000/m" for name in load.UNLIMITED}),
        ):
            report = fuzzing.fuzz(count, random_seed=seed, on_request=bar.update)
        result = report.as_dict()
        failed = bool(report.server_errors)
        if schemathesis_examples:
            with load.production_server(workers=2) as base_url:
                status, output = fuzzing.run_schemathesis(base_url, max_examples=schemathesis_examples)
            cases = re.search(r"(\d+) generated", output)
            result["schemathesis"] = {"cases": int(cases[1]) if cases else None, "passed": status == 0}
            if status != 0:
                self.stderr.write(output)
                failed = True
        self.stdout.write(json.dumps(result))
        if failed:
            raise CommandError("The site answered 5xx or broke its API contract (above).")
