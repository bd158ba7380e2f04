"""Queries may disclose an examiner's or an inventor's invention: none reaches the server's logs or its database."""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

from allpatents.embedded import free_port
from allpatents.web import gunicorn_command
from tests import factories
from tests.conftest import BASE_DIR, service_environment


def log_files() -> list[Path]:
    """Every log under VAR_DIR: the workers', Valkey's and PostgreSQL's own (which logs failed statements)."""
    var = Path(settings.VAR_DIR)
    return sorted({*var.rglob("*.log"), *var.rglob("log")} - {path for path in var.rglob("log") if path.is_dir()})


def text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'tsvector', 'ARRAY')"
        )
        return cursor.fetchall()


def stored_anywhere(marker: str) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        for table, column in text_columns():
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s', [f"%{marker}%"])
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def test_no_query_reaches_the_servers_logs_or_database(transactional_db: None, tmp_path: Path) -> None:
    factories.patent(title="Check valve with a spring", origin="reference")
    marker = f"privacy{uuid.uuid4().hex[:12]}"
    sizes = {path: path.stat().st_size for path in log_files()}
    port = free_port()
    output = tmp_path / "web.log"
    with output.open("wb") as log:
        # The production web server, as `make run` and the Docker image start it.
        web = subprocess.Popen(
            gunicorn_command(f"127.0.0.1:{port}", workers=1), cwd=BASE_DIR, env=service_environment(),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            statuses = [
                get(browser, f"{base}/search/?" + urllib.parse.urlencode(parameters))[0]
                for parameters in (
                    {"q": f"valve {marker}"},
                    {"q": f"valve ADJ2 {marker}$", "mode": "fulltext"},
                    {"q": f"{marker} spring", "mode": "semantic"},
                    {"q": "L1 AND L2", "L1": f"valve OR {marker}", "L2": "spring"},
                    {"q": f'"{marker} unclosed'},  # refused: 400
                    {"q": f"L9 {marker}"},  # a set not in the history: 400
                )
            ]
            page = get(browser, f"{base}/search/?q=valve")[1]
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
            history = [{"number": 1, "typed": marker, "expanded": marker, "mode": "Keyword", "filters": [],
                        "hits": 0, "exact": True, "time": "2026-12-02T10:00:00Z"}]  # fmt: skip
            form = urllib.parse.urlencode(
                {"csrfmiddlewaretoken": token, "history": json.dumps(history), "format": "pdf"}
            )
            request = urllib.request.Request(f"{base}/search/record/", data=form.encode(), headers={"Referer": base})
            record_status = browser.open(request, timeout=60).status
        finally:
            web.terminate()
            web.wait(timeout=30)

    assert (statuses, record_status) == ([200, 200, 200, 200, 400, 400], 200)
    assert marker not in output.read_text(errors="replace")
    for path in log_files():
        with path.open("rb") as file:
            file.seek(sizes.get(path, 0))
            assert marker.encode() not in file.read(), path
    assert stored_anywhere(marker) == []
    # The scan reads every text column: the document's own title is found where it is stored.
    assert "search_patent.title" in stored_anywhere("Check valve with a spring")


def get(browser: urllib.request.OpenerDirector, url: str) -> tuple[int, str]:
    """A page from a server that may still be starting."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with browser.open(url, timeout=60) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
