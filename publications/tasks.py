import datetime

from celery import shared_task

from publications import archiving, manifests, mirroring, ots, timestamps


@shared_task(name="publications.build_manifests", acks_late=True)
def build_manifests() -> int:
    """Manifests for the finished days not covered yet (run daily shortly after midnight UTC)."""
    return len(manifests.build_missing())


@shared_task(name="publications.stamp_manifest", acks_late=True)
def stamp_manifest(day: str, authority: str) -> bool:
    """One authority's time stamp of one day's manifest; a failure is recorded and asked again later."""
    return timestamps.stamp(datetime.date.fromisoformat(day), authority).token is not None


@shared_task(name="publications.stamp_missing", acks_late=True)
def stamp_missing() -> int:
    """Ask again for every time stamp that is due (every quarter hour)."""
    pairs = timestamps.due()
    timestamps.enqueue(pairs)
    return len(pairs)


@shared_task(name="publications.capture_day", acks_late=True)
def capture_day(day: str) -> int:
    """Ask the Internet Archive to capture one day's evidence pages; the number captured."""
    return sum(bool(row.capture_url) for row in archiving.capture(datetime.date.fromisoformat(day)))


@shared_task(name="publications.capture_missing", acks_late=True)
def capture_missing() -> int:
    """Ask again for the captures that are due (hourly)."""
    days = archiving.due()
    archiving.enqueue(days)
    return len(days)


@shared_task(name="publications.sync_mirror", acks_late=True)
def sync_mirror() -> int:
    """On a mirror, copy what the origin published since (hourly); the days stored. Elsewhere nothing."""
    mirror = mirroring.current()
    return mirroring.sync(mirror.source).days if mirror else 0


@shared_task(name="publications.anchor_manifest", acks_late=True)
def anchor_manifest(day: str) -> bool:
    """Submit, or complete, one day's OpenTimestamps proof; whether it is in a Bitcoin block yet."""
    return ots.anchor(datetime.date.fromisoformat(day)).bitcoin_height is not None


@shared_task(name="publications.anchor_missing", acks_late=True)
def anchor_missing() -> int:
    """Ask again for every proof that is due (hourly): new days, and pending ones."""
    days = ots.due()
    ots.enqueue(days)
    return len(days)
