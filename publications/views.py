"""Browsing the archive (by day, month, run and classification), robots.txt, evidence, the search record."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import TruncDay, TruncMonth
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from generation.models import GenerationRun
from publications import manifests, mirroring, search_records, timestamps
from publications.models import DailyManifest, ManifestTimestamp, OpenTimestampsProof
from search.models import LIST_FIELDS, Patent

CPC_SUBCLASS = re.compile(r"[A-HY]\d\d[A-Z]")  # H01M: section, class, subclass

PER_PAGE = 50
UTC = datetime.UTC


def _page(request: HttpRequest, patents: QuerySet[Patent]) -> Page:
    return Paginator(patents.only(*LIST_FIELDS).order_by("-id"), PER_PAGE).get_page(request.GET.get("page"))


@require_GET
def browse(request: HttpRequest) -> HttpResponse:
    months = (
        Patent.objects.annotate(month=TruncMonth("published_at", tzinfo=UTC))
        .values("month")
        .annotate(documents=Count("id"))
        .order_by("-month")
    )
    return render(request, "publications/browse.html", {"months": months})


@require_GET
def month(request: HttpRequest, year: int, month: int) -> HttpResponse:
    try:
        first = datetime.date(year, month, 1)
    except ValueError:
        raise Http404("No such month") from None
    days = (
        Patent.objects.filter(published_at__year=year, published_at__month=month)
        .annotate(day=TruncDay("published_at", tzinfo=UTC))
        .values("day")
        .annotate(documents=Count("id"))
        .order_by("-day")
    )
    return render(request, "publications/month.html", {"month": first, "days": days})


@require_GET
def day(request: HttpRequest, year: int, month: int, day: int) -> HttpResponse:
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise Http404("No such day") from None
    start = datetime.datetime.combine(date, datetime.time(), tzinfo=UTC)
    patents = Patent.objects.filter(published_at__gte=start, published_at__lt=start + datetime.timedelta(days=1))
    manifest = DailyManifest.objects.filter(date=date).only("date", "count", "merkle_root").first()
    stamps = timestamps.of(manifest) if manifest else []
    captures = list(manifest.captures.all()) if manifest else []
    anchor = (
        OpenTimestampsProof.objects.filter(manifest=manifest)
        .annotate(proof_stored=Q(proof__isnull=False))
        .defer("proof")
        .first()
        if manifest
        else None
    )
    context = {
        "anchor": anchor,
        "day": date,
        "page": _page(request, patents),
        "manifest": manifest,
        "timestamps": stamps,
        "captures": captures,
    }
    return render(request, "publications/day.html", context)


@require_GET
def runs(request: HttpRequest) -> HttpResponse:
    published = GenerationRun.objects.annotate(documents=Count("patents")).filter(documents__gt=0).order_by("-id")
    return render(request, "publications/runs.html", {"runs": published})


@require_GET
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    generation_run = get_object_or_404(GenerationRun, pk=run_id)
    page = _page(request, Patent.objects.filter(generation_run=generation_run))
    return render(request, "publications/run.html", {"run": generation_run, "page": page})


@require_GET
def classifications(request: HttpRequest) -> HttpResponse:
    subclasses = [{"code": code, "documents": documents} for code, documents in _subclass_counts()]
    return render(request, "publications/classifications.html", {"subclasses": subclasses})


@require_GET
def classification(request: HttpRequest, code: str) -> HttpResponse:
    code = code.upper()
    if not CPC_SUBCLASS.fullmatch(code):
        raise Http404("Not a CPC subclass")
    page = _page(request, Patent.objects.filter(cpc_subclasses__contains=[code]))
    return render(request, "publications/classification.html", {"code": code, "page": page})


@require_GET
def manifest(request: HttpRequest, date: str) -> HttpResponse:
    record = _manifest(date)
    response = HttpResponse(record.manifest, content_type="application/json")
    response["ETag"] = f'"{record.manifest_sha256}"'
    patch_cache_control(response, public=True, max_age=365 * 24 * 3600, immutable=True)
    return response


@require_GET
def timestamp(request: HttpRequest, date: str, authority: str) -> HttpResponse:
    """An authority's RFC 3161 time-stamp response for the day's manifest, byte for byte as it sent it."""
    stamp = get_object_or_404(ManifestTimestamp, manifest=_manifest(date), slug=authority, token__isnull=False)
    response = HttpResponse(bytes(stamp.token), content_type="application/timestamp-reply")
    response["Content-Disposition"] = f'attachment; filename="{date}-manifest.json.{authority}.tsr"'
    patch_cache_control(response, public=True, max_age=365 * 24 * 3600, immutable=True)
    return response


@require_GET
def ots_proof(request: HttpRequest, date: str) -> HttpResponse:
    """The day's OpenTimestamps proof as `ots verify` reads it; it grows once, pending to complete."""
    proof = get_object_or_404(OpenTimestampsProof, manifest=_manifest(date), proof__isnull=False)
    response = HttpResponse(bytes(proof.proof), content_type="application/vnd.opentimestamps.v1")
    response["Content-Disposition"] = f'attachment; filename="{date}-manifest.json.ots"'
    # Not immutable: a pending proof is replaced by the complete one once its block confirms.
    patch_cache_control(response, public=True, max_age=3600)
    return response


@require_GET
def dump(request: HttpRequest, date: str) -> FileResponse:
    record = _manifest(date)
    response = FileResponse(manifests.dump_path(record.date).open("rb"), content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{record.date.isoformat()}.jsonl.gz"'
    response["ETag"] = f'"{record.dump_sha256}"'
    patch_cache_control(response, public=True, max_age=365 * 24 * 3600, immutable=True)
    return response


@require_GET
def index(request: HttpRequest) -> JsonResponse:
    """Every built day with its hashes, time stamps and withdrawals: what a mirror reads first."""
    manifests.build_missing()
    response = JsonResponse(mirroring.index_document(settings.SITE_URL), json_dumps_params={"indent": 1})
    patch_cache_control(response, public=True, max_age=300)
    return response


@require_GET
def evidence(request: HttpRequest) -> HttpResponse:
    manifests.build_missing()
    days = DailyManifest.objects.only("date", "count", "merkle_root", "dump_sha256").prefetch_related(
        Prefetch("timestamps", ManifestTimestamp.objects.defer("token"))
    )[:60]
    return render(request, "publications/evidence.html", {"manifests": days})


@require_GET
def procedure(request: HttpRequest) -> HttpResponse:
    """The rules of publication, and their verification step by step on a day (?day=, else the latest finished)."""
    manifests.build_missing()
    try:
        chosen = datetime.date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        chosen = None
    days = DailyManifest.objects.filter(date=chosen) if chosen else DailyManifest.objects.all()
    example = days.first()
    if chosen and example is None:
        raise Http404("That day has no manifest")
    context: dict[str, object] = {"example": example, "base": request.build_absolute_uri("/").rstrip("/")}
    if example is not None:
        document = json.loads(example.manifest)
        context |= {
            "document": document["documents"][0] if document["documents"] else None,
            "following": DailyManifest.objects.filter(date=example.date + datetime.timedelta(days=1)).first(),
            "timestamps": [stamp for stamp in timestamps.of(example) if stamp.stamped_at],
            "merkle_script": MERKLE_SCRIPT,
            "certificates": bool(settings.TSA_CA_FILE),
        }
    return render(request, "publications/procedure.html", context)


# The Merkle root of a manifest with nothing but Python's standard library (publications/merkle.py).
MERKLE_SCRIPT = """\
import hashlib, json, sys

def tree(leaves):
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\\x01" + tree(leaves[:split]) + tree(leaves[split:])).digest()

documents = json.load(open(sys.argv[1]))["documents"]
leaves = [hashlib.sha256(b"\\x00" + f"{d['id']} {d['sha256']}".encode()).digest() for d in documents]
print(tree(leaves).hex() if leaves else hashlib.sha256(b"").hexdigest())
"""


@require_GET
def tsa_certificates(request: HttpRequest) -> HttpResponse:
    """The certificates this site checks its time stamps against (TSA_CA_FILE), for convenience."""
    if not settings.TSA_CA_FILE:
        raise Http404("No time-stamping authority is configured")
    return HttpResponse(Path(settings.TSA_CA_FILE).read_bytes(), content_type="application/x-pem-file")


@require_GET
def robots(request: HttpRequest) -> HttpResponse:
    sitemap = request.build_absolute_uri(reverse("sitemap"))
    lines = [
        "User-agent: *",
        "Allow: /",
        "Disallow: /admin/",
        "Disallow: /runs/",
        "Disallow: /search/export",
        f"Sitemap: {sitemap}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


def _manifest(date: str) -> DailyManifest:
    """The day's manifest; a finished day since the first publication that has none yet gets built."""
    try:
        day = datetime.date.fromisoformat(date)
    except ValueError:
        raise Http404("Not a date") from None
    existing = DailyManifest.objects.filter(date=day).first()
    if existing:
        return existing
    first = manifests.first_day()
    if first is None or not first <= day < datetime.datetime.now(UTC).date():
        raise Http404("Manifests cover finished days since the first publication")
    return _built(day)


def _built(day: datetime.date) -> DailyManifest:
    # Normally built by the daily task; a request for a missing finished day builds the chain up to it.
    manifests.build_missing(until=day)
    return DailyManifest.objects.get(date=day)


def _subclass_counts() -> list[tuple[str, int]]:
    counts = cache.get("publications:subclass-counts")
    if counts is None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT code, count(*) FROM search_patent, unnest(cpc_subclasses) AS code GROUP BY code ORDER BY code"
            )
            counts = cursor.fetchall()
        cache.set("publications:subclass-counts", counts, 600)  # a full scan: once per ten minutes
    return counts


@require_POST
@never_cache
def search_record(request: HttpRequest) -> HttpResponse:
    """The session's search record, as PDF or text, from the history the browser sends; nothing of it is kept."""
    try:
        searches = search_records.entries(json.loads(request.POST.get("history") or "null"))
    except ValueError as error:  # not JSON, or not a history (search_records.InvalidHistory)
        return HttpResponse(f"No search record: {error}\n", status=400, content_type="text/plain; charset=utf-8")
    kind = request.POST.get("format")
    if kind not in ("pdf", "txt"):
        return HttpResponse("The format must be pdf or txt.\n", status=400, content_type="text/plain; charset=utf-8")
    made_at = timezone.now().replace(microsecond=0)
    database = search_records.database(request.build_absolute_uri("/").rstrip("/"), request.build_absolute_uri)
    if kind == "pdf":
        response = HttpResponse(search_records.pdf(searches, database, made_at), content_type="application/pdf")
    else:
        response = HttpResponse(
            search_records.text(searches, database, made_at), content_type="text/plain; charset=utf-8"
        )
    response["Content-Disposition"] = f'attachment; filename="search-record-{made_at:%Y%m%d-%H%M%S}.{kind}"'
    return response
