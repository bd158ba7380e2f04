from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from search.models import Origin, Patent, Tombstone, parse_public_id

RESULTS_PER_PAGE = 20


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    counts = Patent.objects.aggregate(
        total=Count("id"),
        generated=Count("id", filter=Q(origin=Origin.GENERATED)),
        reference=Count("id", filter=Q(origin=Origin.REFERENCE)),
    )
    latest = Patent.objects.only("id", "title", "origin", "published_at")[:10]
    return render(request, "search/home.html", {"counts": counts, "latest": latest})


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = None
    if query:
        results = Patent.objects.search(query).only("id", "title", "origin", "source_id", "published_at")
        page = Paginator(results, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "search/results.html", {"query": query, "page": page})


@require_GET
def patent(request: HttpRequest, public_id: str) -> HttpResponse:
    number = parse_public_id(public_id)
    if number is None:
        raise Http404("No such document")
    document = Patent.objects.select_related("generation_run").filter(pk=number).first()
    if document is None:
        tombstone = Tombstone.objects.filter(pk=number).first()
        if tombstone is None:
            raise Http404("No such document")
        return render(request, "search/tombstone.html", {"tombstone": tombstone}, status=410)
    if public_id != document.public_id:
        # One permanent URL per document: atp-42 -> ATP-00000042.
        return redirect(document, permanent=True)
    return render(request, "search/patent.html", {"patent": document})
