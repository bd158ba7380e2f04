"""Answers any page may give instead of its own: 503 while the database is down, 429 past a client's rate."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER_UNAVAILABLE = 30  # seconds: a restarting PostgreSQL is usually back by then

# (path prefix, counter, setting naming the rate, methods counted)
RATE_LIMITED = (
    ("/search/", "search", "RATE_LIMIT_SEARCH", ALL),
    ("/api/", "api", "RATE_LIMIT_API", ALL),
    ("/admin/login/", "login", "RATE_LIMIT_LOGIN", "POST"),
)


def _refusal(request: HttpRequest, status: int, message: str, retry_after: int) -> HttpResponse:
    """The API's error shape ({"message": ...}) under /api/, a page (templates/STATUS.html) elsewhere."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"message": message}, status=status)
    else:
        response = render(request, f"{status}.html", {"message": message}, status=status)
    response["Retry-After"] = str(retry_after)
    return response


class DatabaseUnavailableMiddleware:
    """A lost or refused database connection answers 503 with Retry-After, not a 500.

    Nothing else is needed to recover: Django drops a connection that failed at the end of the
    request, and the next request opens a new one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if isinstance(exception.__cause__, psycopg.errors.QueryCanceled):
            return None  # a statement that ran too long is not an outage
        logger.warning("Database unavailable: %s", exception)
        message = "The database is unavailable for a moment. Nothing is lost; try again shortly."
        return _refusal(request, 503, message, RETRY_AFTER_UNAVAILABLE)


class RateLimitMiddleware:
    """Per-client limits (django-ratelimit's counters on the shared cache) on searching, the API and sign-in.

    If the cache itself is down, requests are served unlimited: an archive that can't count is
    better than one that can't be read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for prefix, group, setting, method in RATE_LIMITED:
            if request.path.startswith(prefix):
                try:
                    usage = get_usage(
                        request,
                        group=group,
                        key="ip",
                        rate=getattr(settings, setting),
                        method=method,
                        increment=True,
                    )
                except RedisError as error:
                    logger.warning("Rate limits not applied, the cache is unavailable: %s", error)
                    usage = None
                if usage and usage["should_limit"]:
                    retry_after = max(1, int(usage["time_left"]))
                    message = f"Too many requests from your address. Try again in {retry_after} seconds."
                    return _refusal(request, 429, message, retry_after)
                break
        return self.get_response(request)
