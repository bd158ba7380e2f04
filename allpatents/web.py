"""How the production web server runs: one command line for `make run` with DEBUG off and for `bench_load`."""

from __future__ import annotations

import sys

# One sync worker per core: a request holds its worker for its whole life, and the CPU work of a
# request (templates, query embeddings) can't use more than one core at a time.
WEB_WORKERS = 2


def gunicorn_command(bind: str, *, workers: int = WEB_WORKERS) -> list[str]:
    # Request lines up to gunicorn's largest limit: a query of 4,000 characters outside ASCII is
    # longer than its default 4,094 bytes once percent-encoded.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "allpatents.wsgi",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--limit-request-line",
        "8190",
    ]
