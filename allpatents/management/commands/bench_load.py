"""`manage.py bench_load`: requests per second and latency of the production web server under load."""

from __future__ import annotations

import json
import shutil
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allpatents import load
from allpatents.web import WEB_WORKERS


class Command(BaseCommand):
    help = (
        "Start gunicorn with DEBUG off on loopback and measure, with wrk, the home page, a patent page, a keyword "
        "search and a hybrid search at each number of clients. Prints one JSON line per measurement, then a summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
        parser.add_argument("--seconds", type=int, default=12, help="Per target and number of clients.")
        parser.add_argument("--workers", type=int, default=WEB_WORKERS, help="gunicorn worker processes.")
        parser.add_argument("--targets", nargs="+", choices=load.TARGETS, default=list(load.TARGETS))

    def handle(self, *args: Any, clients: list[int], seconds: int, workers: int, targets: list[str], **options: Any):
        if shutil.which("wrk") is None:
            raise CommandError("wrk is not installed (Debian and Ubuntu: sudo apt-get install wrk).")
        paths = load.target_paths()
        measurements = []
        with load.production_server(workers=workers) as base_url:
            load.warm_up(base_url, paths)
            for target in targets:
                for count in clients:
                    measurement = load.measure(base_url, target, paths[target], clients=count, seconds=seconds)
                    measurements.append(measurement)
                    self.stdout.write(json.dumps(measurement.as_dict()))
        headline = 8 if 8 in clients else clients[0]
        self.stdout.write(json.dumps({**load.summary(measurements, clients=headline), "workers": workers}))
