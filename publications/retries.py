"""Asking services outside our control (time-stamping authorities, the Internet Archive), patiently.

A request to one of them runs in a task sent after the commit, so publishing never waits on it;
a failure is recorded with the time of the next attempt, and a beat sweep sends what is due.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

from celery import Task
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# The first retry after a minute, doubling up to six hours between attempts.
FIRST_RETRY = datetime.timedelta(minutes=1)
LONGEST_RETRY = datetime.timedelta(hours=6)


def next_attempt(attempts: int) -> datetime.datetime:
    """When to ask again after `attempts` failed attempts."""
    return timezone.now() + min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


def send_after_commit(task: Task, calls: Sequence[tuple[str, ...]]) -> None:
    """Send `task` once per argument tuple when the current transaction commits.

    A broker that is away is logged, not raised: the sweep sends the work again, and the
    transaction that published something has committed already.
    """

    def send() -> None:
        for arguments in calls:
            try:
                task.delay(*arguments)
            except Exception:
                logger.exception("Could not send %s%s; the sweep sends it again", task.name, arguments)
                return

    if calls:
        transaction.on_commit(send)
