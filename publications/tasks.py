from celery import shared_task

from publications import manifests


@shared_task(name="publications.build_manifests", acks_late=True)
def build_manifests() -> int:
    """Manifests for the finished days not covered yet (run daily shortly after midnight UTC)."""
    return len(manifests.build_missing())
