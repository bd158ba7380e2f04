"""Load on the production web server, measured with wrk (Debian's package): `manage.py bench_load`.

wrk keeps its own latency histogram and counts errors of every kind (connect, read, write,
timeouts and answers of 400 or more); a Lua script sends each target's paths in turn and prints
the figures as one JSON line when the run is done. Paths come from the store, 500 of each kind,
so no cache along the way (PostgreSQL's buffers, the workers' rendered patent pages) is asked
for one page over and over.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from django.conf import settings

from allpatents.embedded import free_port
from allpatents.web import gunicorn_command

TARGETS = ("home_page", "patent_page", "keyword_search", "hybrid_search")

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Measurement:
    target: str
    clients: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rps": round(self.rps, 1)}


def target_paths(count: int = 500) -> dict[str, list[str]]:
    """Paths of each target, made from the stored documents' titles and ids (oldest first, so runs agree)."""
    from search.models import Patent

    patents = Patent.objects.only("title").order_by("id")[:count]
    documents = [(patent.get_absolute_url(), patent.title) for patent in patents]
    if not documents:
        raise ValueError("The store is empty: import patents first (manage.py import_patents).")
    keywords = [_keywords(title) for _, title in documents]
    return {
        "home_page": ["/"],
        "patent_page": [url for url, _ in documents],
        "keyword_search": [_search_path(words, "fulltext") for words in keywords if words],
        "hybrid_search": [_search_path(title, "hybrid") for _, title in documents],
    }


def _keywords(title: str) -> str:
    """Two words of a title, as an examiner might type them (never an operator of the query syntax)."""
    words = [word for word in re.findall(r"[a-z]{4,}", title.lower()) if word not in {"near", "same", "with"}]
    return " ".join(words[:2])


def _search_path(query: str, mode: str) -> str:
    return "/search/?" + urlencode({"q": query, "mode": mode})


def wrk_script(paths: Sequence[str]) -> str:
    """A Lua script that requests the paths in turn (each wrk thread from its own place in the list)."""
    listed = ",\n".join(json.dumps(path) for path in paths)  # JSON string escapes are valid Lua ones
    return (
        f"local paths = {{\n{listed}\n}}\n"
        "local next_index = math.random(#paths)\n"
        "request = function()\n"
        "  next_index = next_index % #paths + 1\n"
        '  return wrk.format("GET", paths[next_index])\n'
        "end\n" + _DONE
    )


def measure(base_url: str, target: str, paths: Sequence[str], *, clients: int, seconds: int) -> Measurement:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(paths))
    try:
        result = subprocess.run(
            [
                "wrk",
                f"--threads={min(clients, 2)}",
                f"--connections={clients}",
                f"--duration={seconds}s",
                # Long enough that a slow answer is measured, not dropped as a timeout.
                "--timeout=30s",
                f"--script={script.name}",
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return Measurement(
        target=target,
        clients=clients,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        errors=figures["errors"],
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
    )


def summary(measurements: Sequence[Measurement], *, clients: int = 8) -> dict:
    """The headline figures: each target's rate at `clients` clients, errors and the slowest answer overall."""
    at = {m.target: m for m in measurements if m.clients == clients}
    return {
        **{f"{target}_rps": round(at[target].rps, 1) for target in TARGETS if target in at},
        "clients": clients,
        "errors": sum(m.errors for m in measurements),
        "max_ms": max((m.max_ms for m in measurements), default=0.0),
    }


# One client address sends every request of a load test: the limits are raised out of the way but
# stay switched on, so their cost is measured.
UNLIMITED = {"RATE_LIMIT_SEARCH": "1000000/m", "RATE_LIMIT_API": "1000000/m"}


@contextmanager
def production_server(*, workers: int, environment: dict[str, str] | None = None) -> Iterator[str]:
    """gunicorn with DEBUG off on a free loopback port, as `DEBUG=0 make run` serves; yields its address."""
    env = {**os.environ, "DEBUG": "0", **UNLIMITED, **(environment or {})}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        gunicorn_command(f"127.0.0.1:{port}", workers=workers),
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_serving(base_url, server)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_serving(base_url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            stderr = server.stderr.read().decode(errors="replace") if server.stderr else ""
            raise RuntimeError(f"The web server stopped before serving:\n{stderr[-2000:]}")
        try:
            # Workers load the embedding model before they answer: several seconds on a busy machine.
            with urllib.request.urlopen(base_url + "/robots.txt", timeout=30):
                return
        except OSError:  # refused, reset or timed out
            time.sleep(0.5)
    raise RuntimeError(f"The web server did not answer within {timeout:.0f} s.")


def warm_up(base_url: str, paths: dict[str, list[str]]) -> None:
    """One request of each target in each worker: models loaded and connections open before timing."""
    for _ in range(4):
        for target_paths_ in paths.values():
            with urllib.request.urlopen(base_url + target_paths_[0], timeout=60) as response:
                response.read()
