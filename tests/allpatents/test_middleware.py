"""Rate limits, security headers, and a site that says 503 while its database is away and recovers alone."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.test import Client, override_settings

from allpatents.load import production_server
from search.models import Patent
from tests import factories
from tests.faults import FlakyDatabaseLink


@pytest.fixture
def stored(db: None) -> Patent:
    return factories.patent(title="Cup holder with a spring clip")


@override_settings(RATE_LIMIT_SEARCH="3/m")
def test_a_client_past_its_search_rate_is_answered_429_with_retry_after(client: Client, stored: Patent) -> None:
    statuses = [client.get("/search/", {"q": "cup"}).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = client.get("/search/", {"q": "cup"})
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many requests" in refused.content.decode()


@override_settings(RATE_LIMIT_SEARCH="1/m")
def test_the_limit_counts_each_client_address_apart(client: Client, stored: Patent) -> None:
    assert client.get("/search/", {"q": "cup"}, REMOTE_ADDR="192.0.2.1").status_code == 200
    assert client.get("/search/", {"q": "cup"}, REMOTE_ADDR="192.0.2.1").status_code == 429
    assert client.get("/search/", {"q": "cup"}, REMOTE_ADDR="192.0.2.2").status_code == 200


@override_settings(RATE_LIMIT_API="2/m")
def test_the_api_limit_answers_json(client: Client, stored: Patent) -> None:
    for _ in range(2):
        assert client.get("/api/search", {"q": "cup"}).status_code == 200

    refused = client.get("/api/search", {"q": "cup"})

    assert refused.status_code == 429
    assert refused.json() == {
        "message": f"Too many requests from your address. Try again in {refused['Retry-After']} seconds."
    }


@override_settings(RATE_LIMIT_LOGIN="2/m")
def test_admin_sign_in_attempts_are_throttled_but_the_form_is_not(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counting windows are fixed periods: three attempts (a password hash each) that straddle a window's
    # end would start a new count. The limiter's clock stands still here.
    import django_ratelimit.core

    now = time.time()
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: now))
    attempts = [
        client.post("/admin/login/", {"username": "root", "password": f"guess{n}"}).status_code for n in range(3)
    ]

    assert attempts == [200, 200, 429]  # 200: the form again, with "wrong password"
    assert client.get("/admin/login/").status_code == 200


@override_settings(
    RATE_LIMIT_SEARCH="1/m",
    CACHES={**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/1"}},
)
def test_searching_goes_on_unlimited_when_the_cache_is_unreachable(client: Client, stored: Patent) -> None:
    assert [client.get("/search/", {"q": "cup"}).status_code for _ in range(3)] == [200, 200, 200]


def test_every_page_forbids_inline_and_foreign_code(client: Client, stored: Patent) -> None:
    for url in ("/", stored.get_absolute_url(), "/search/?q=cup", "/api/docs"):
        response = client.get(url)
        policy = dict(directive.strip().split(" ", 1) for directive in response["Content-Security-Policy"].split(";"))
        assert policy == {
            "default-src": "'self'",
            "img-src": "'self' data:",
            "object-src": "'none'",
            "base-uri": "'self'",
            "form-action": "'self'",
            "frame-ancestors": "'none'",
        }, url
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def _get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.mark.slow
def test_the_site_answers_503_while_the_database_is_down_and_recovers_by_itself(transactional_db: None) -> None:
    stored = factories.patent(title="Cup holder with a spring clip")
    link = FlakyDatabaseLink.to_test_database()
    environment = {
        "DATABASE_URL": link.database_url,
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": "a-test-key-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    try:
        with production_server(workers=1, environment=environment) as base_url:
            assert _get(base_url + stored.get_absolute_url())[0] == 200

            link.shut()
            status, headers, page = _get(base_url + "/")
            api_status, _, api_body = _get(base_url + "/api/search?q=cup")

            assert status == 503
            assert headers["Retry-After"] == "30"
            assert "The database is unavailable for a moment" in page
            assert api_status == 503
            assert "database is unavailable" in api_body

            link.reopen()
            deadline = time.monotonic() + 30
            while (status := _get(base_url + "/")[0]) != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert status == 200
            assert _get(base_url + stored.get_absolute_url())[0] == 200
    finally:
        link.close()
