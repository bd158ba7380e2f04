"""Search pages: the home page, the search box with its modes and filters, search by text, syntax help.

Queries are never stored or logged (they may disclose an examiner's or an
inventor's invention): search pages answer GET requests, send no-store and
noindex, and the django.server request log is silenced in settings.
"""

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from search import searching
from search.forms import RESULTS_PER_PAGE, SearchForm, TextSearchForm
from search.models import LIST_FIELDS, Origin, Patent


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    counts = Patent.objects.aggregate(
        total=Count("id"),
        generated=Count("id", filter=Q(origin=Origin.GENERATED)),
        reference=Count("id", filter=Q(origin=Origin.REFERENCE)),
    )
    latest = Patent.objects.only(*LIST_FIELDS).order_by("-id")[:10]
    return render(request, "search/home.html", {"counts": counts, "latest": latest})


@require_GET
@never_cache
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    results, error = None, ""
    if form.is_valid() and form.cleaned_data["q"]:
        try:
            results = form.search()
        except searching.SearchError as problem:
            error = str(problem)
    status = 400 if error or (form.errors and request.GET) else 200
    context = {"form": form, "results": results, "error": error, "pages": _pages(request, results)}
    if results is not None:
        context["record"] = _history_entry(form, results)
    return render(request, "search/results.html", context, status=status)


def _history_entry(form: SearchForm, results: searching.Results) -> dict[str, object]:
    """What the browser's search history keeps of this search (static/js/search-history.js); never the server."""
    conditions = form.described_filters()
    if form.cleaned_data.get("op") == "OR":
        conditions.append("Between bare words: OR")
    return {
        "typed": form.cleaned_data["q"],
        "expanded": form.expanded_query,
        "mode": results.mode_label,
        "filters": conditions,
        "hits": results.total,
        "exact": results.total_is_exact,
        "time": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@require_GET
@never_cache
def search_by_text(request: HttpRequest) -> HttpResponse:
    form = TextSearchForm(request.GET if "text" in request.GET else None)
    results, error = None, ""
    if form.is_bound and form.is_valid():
        try:
            results = searching.search_by_text(
                form.cleaned_data["text"], filters=form.filters(), limit=RESULTS_PER_PAGE
            )
        except searching.SearchError as problem:
            error = str(problem)
    return render(request, "search/by_text.html", {"form": form, "results": results, "error": error})


@require_GET
def syntax(request: HttpRequest) -> HttpResponse:
    return render(request, "search/syntax.html")


def _pages(request: HttpRequest, results: searching.Results | None) -> dict[str, str]:
    """Query strings of the previous and next pages (same query and filters)."""
    if results is None:
        return {}
    number = results.offset // results.limit + 1
    links = {}
    for name, page in (("previous", number - 1), ("next", number + 1)):
        if (name == "previous" and page >= 1) or (name == "next" and results.has_next):
            parameters = request.GET.copy()
            parameters["page"] = str(page)
            links[name] = parameters.urlencode()
    links["number"] = str(number)
    return links
