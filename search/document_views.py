"""A published document at its permanent URL, its downloads and citations, and exports of search results.

A document's text never changes, so its downloads are cached for a year. The
HTML page also lists similar documents (which change as the archive grows)
and today's date in "retrieved on", so it is cached for a day, with an ETag
that changes when either does. Rendered pages are also kept, by that ETag, in
a cache on the web server's disk that all its workers share: a page is mostly
its similar documents (a vector search) and its citations, and the same page
is asked for again and again.
"""

from __future__ import annotations

import datetime
import json

from django.core.cache import caches
from django.db.models import Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import condition, require_GET

from search import citations, pdf, searching
from search.forms import FiltersForm, SearchForm
from search.models import Patent, Tombstone, parse_public_id

YEAR = 365 * 24 * 3600
IMMUTABLE = ("txt", "json", "pdf")  # copies of the published text; citations carry today's date
DAY = 24 * 3600
SIMILAR_PER_PAGE = 20
DOWNLOADS = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
    "bib": "application/x-bibtex; charset=utf-8",
    "ris": "application/x-research-info-systems; charset=utf-8",
}


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def _page_etag(request: HttpRequest, public_id: str) -> str | None:
    number = parse_public_id(public_id)
    if number is None:
        return None
    newest = Patent.objects.order_by("-id").values("id")[:1]  # one round trip with the document's hash
    row = Patent.objects.filter(pk=number).annotate(newest=Subquery(newest)).values_list("sha256", "newest").first()
    if row is None:
        return None
    sha, newest_id = row
    etag = f"{sha[:20]}-{newest_id}-{_today():%Y%m%d}"
    request.page_etag = etag  # kept for the view: it names the rendered page in the cache
    return etag


def _find(public_id: str) -> Patent | Tombstone:
    number = parse_public_id(public_id)
    if number is None:
        raise Http404("No such document")
    document = Patent.objects.select_related("generation_run").filter(pk=number).first()
    if document is None:
        document = Tombstone.objects.filter(pk=number).first()
    if document is None:
        raise Http404("No such document")
    return document


@require_GET
@condition(etag_func=_page_etag)
def patent(request: HttpRequest, public_id: str) -> HttpResponse:
    # The ETag exists only for a stored document, and it names the page in the cache.
    etag = getattr(request, "page_etag", None)
    key = f"patent:{request.get_host()}:{public_id}:{etag}"
    if etag and (page := caches["pages"].get(key)) is not None:
        response = HttpResponse(page)
    else:
        document = _find(public_id)
        if isinstance(document, Tombstone):
            return render(request, "search/tombstone.html", {"tombstone": document}, status=410)
        if public_id != document.public_id:
            # One permanent URL per document: atp-42 -> ATP-00000042.
            return redirect(document, permanent=True)
        response = _render_patent(request, document)
        caches["pages"].set(key, response.content)
    patch_cache_control(response, public=True, max_age=DAY)
    return response


def _render_patent(request: HttpRequest, document: Patent) -> HttpResponse:
    url = request.build_absolute_uri(document.get_absolute_url())
    pdf_url = request.build_absolute_uri(reverse("search:download", args=[document.public_id, "pdf"]))
    retrieved = _today()
    context = {
        "patent": document,
        "url": url,
        "pdf_url": pdf_url,
        "json_ld": citations.json_ld(document, url, pdf_url),
        "similar": searching.similar(document, limit=5),
        "key_terms": searching.key_terms(document),
        "citation": citations.examiner_citation(document, url, retrieved),
        "bibtex": citations.bibtex([(document, url)], retrieved),
        "ris": citations.ris([(document, url)], retrieved),
    }
    return render(request, "search/patent.html", context)


def _download_etag(request: HttpRequest, public_id: str, extension: str) -> str | None:
    """The published text never changes, so its hash validates the text, JSON and PDF copies."""
    number = parse_public_id(public_id)
    if extension not in IMMUTABLE or number is None:
        return None
    return Patent.objects.filter(pk=number).values_list("sha256", flat=True).first()


@require_GET
@condition(etag_func=_download_etag)
def download(request: HttpRequest, public_id: str, extension: str) -> HttpResponse:
    document = _find(public_id)
    if isinstance(document, Tombstone):
        return HttpResponse(f"{document.public_id} was withdrawn: {document.reason}\n", status=410)
    url = request.build_absolute_uri(document.get_absolute_url())
    if extension == "txt":
        body: bytes | str = document.text
    elif extension == "json":
        body = json.dumps(document.record(url), indent=2, ensure_ascii=False)
    elif extension == "pdf":
        body = pdf.render(document, url)
    elif extension == "bib":
        body = citations.bibtex([(document, url)], _today())
    else:
        body = citations.ris([(document, url)], _today())
    response = HttpResponse(body, content_type=DOWNLOADS[extension])
    response["Content-Disposition"] = f'inline; filename="{document.public_id}.{extension}"'
    if extension in IMMUTABLE:
        patch_cache_control(response, public=True, max_age=YEAR, immutable=True)
    return response


@require_GET
def similar(request: HttpRequest, public_id: str) -> HttpResponse:
    """More like this, with filters: for prior art, only what was published before a priority date."""
    document = _find(public_id)
    if isinstance(document, Tombstone):
        return render(request, "search/tombstone.html", {"tombstone": document}, status=410)
    form = FiltersForm(request.GET or None)
    filters = form.filters() if form.is_bound and form.is_valid() else searching.Filters()
    hits = searching.similar(document, limit=SIMILAR_PER_PAGE, filters=filters)
    return render(request, "search/similar.html", {"patent": document, "form": form, "hits": hits})


@require_GET
def export(request: HttpRequest, extension: str) -> HttpResponse:
    """Up to MAX_RESULTS results of a search as CSV, RIS or BibTeX."""
    form = SearchForm(request.GET)
    if not form.is_valid() or not form.cleaned_data["q"]:
        return HttpResponse("A query (q) is needed to export results.\n", status=400, content_type="text/plain")
    form.cleaned_data["page"] = 1
    try:
        results = form.search(limit=searching.MAX_RESULTS, snippets=False)
    except searching.SearchError as error:
        return HttpResponse(f"{error}\n", status=400, content_type="text/plain")
    entries = [
        (hit.patent, request.build_absolute_uri(hit.patent.get_absolute_url()), hit.score) for hit in results.hits
    ]
    if extension == "csv":
        body, content_type = citations.csv_rows(entries), "text/csv; charset=utf-8"
    elif extension == "ris":
        body, content_type = citations.ris([(p, u) for p, u, _ in entries], _today()), DOWNLOADS["ris"]
    else:
        body, content_type = citations.bibtex([(p, u) for p, u, _ in entries], _today()), DOWNLOADS["bib"]
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="all-the-patents-results.{extension}"'
    response["Cache-Control"] = "no-store"
    return response
