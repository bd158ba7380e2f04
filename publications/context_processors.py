"""What every page needs to know about the publications: whether this installation is a mirror."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from publications import mirroring


def mirror(request: HttpRequest) -> dict[str, object]:
    # Lazy: only a page that renders the banner looks it up (and then from the cache).
    return {"mirror": SimpleLazyObject(mirroring.current)}
