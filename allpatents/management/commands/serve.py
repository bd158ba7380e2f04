"""`make run`: the whole service on one machine, stopped together with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from allpatents.celery import worker_command
from allpatents.web import gunicorn_command
from generation.llm import BUNDLED_GENERATOR, default_generator
from publications.models import Mirror
from search.importing import SAMPLE_CORPUS
from search.models import Patent
from search.publishing import vectors_out_of_date


class Command(BaseCommand):
    help = "Migrate, import the sample corpus into an empty store, then run a Celery worker and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, port: int, host: str, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.prepare_store()
        self._choose_generator()
        # The children find the embedded servers this process started (or
        # reused) through their leases, or use DATABASE_URL / REDIS_URL.
        children = [
            subprocess.Popen(
                worker_command(
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "INFO",
                    # Embedded beat: builds each day's publication manifest after midnight UTC.
                    "--beat",
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                ),
                cwd=settings.BASE_DIR,
            ),
            self._web_server(host, port),
        ]
        self.stdout.write(
            self.style.SUCCESS(f"\nAll the Patents is running: http://{host}:{port}/\n")
            + f"  admin: http://{host}:{port}/admin/\n"
            + "         (create an account with: .venv/bin/python manage.py createsuperuser)\n"
            + f"  data:  {settings.VAR_DIR}\n"
            + "Press Ctrl-C to stop everything.\n"
        )
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            self.stderr.write("A process of the service stopped; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()

    def prepare_store(self) -> None:
        """Fill an empty store with the sample, and bring stored vectors up to the current embedding model."""
        if Mirror.objects.exists():
            # A copy holds the origin's record only; the hourly sync brings it up to date.
            self.stdout.write(f"This installation mirrors {Mirror.objects.get().origin}.")
        elif not Patent.objects.exists():
            self.stdout.write(f"The store is empty: importing the bundled sample corpus ({SAMPLE_CORPUS.name}).")
            call_command("import_patents", str(SAMPLE_CORPUS))
        elif vectors_out_of_date():
            # Semantic search compares a query's vector with the stored ones: from two models, they don't compare.
            self.stdout.write("The store's vectors were made by another embedding model: re-embedding them (once).")
            call_command("reembed")
        elif Patent.objects.filter(passages__isnull=True).exists():
            self.stdout.write("Documents stored before passage-level search: embedding their passages (once).")
            call_command("embed_passages")

    def _choose_generator(self) -> None:
        """Without a configured generator, the bundled one when the hub is out of reach."""
        name = default_generator()
        # The children (worker, web server) inherit it.
        os.environ["GENERATOR_MODEL"] = name
        if name == str(BUNDLED_GENERATOR):
            self.stdout.write(f"The model hub can't be reached: generating with the bundled model {name}.")
        else:
            self.stdout.write(f"Generator: {name}")

    def _web_server(self, host: str, port: int) -> subprocess.Popen[bytes]:
        if settings.DEBUG:
            command = [sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
        else:
            call_command("collectstatic", interactive=False, verbosity=0)
            command = gunicorn_command(f"{host}:{port}")
        return subprocess.Popen(command, cwd=settings.BASE_DIR)
