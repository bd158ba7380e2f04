"""The JSON API: search, documents and similar documents. OpenAPI schema at /api/schema."""

from __future__ import annotations

import datetime
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Query, Schema
from ninja.errors import HttpError, ValidationError

from search import query as query_language
from search import searching
from search.models import Patent, Tombstone, parse_public_id

api = NinjaAPI(
    title="All the Patents",
    version="1",
    description="Search machine-generated prior art and the reference patents it sits among. "
    "Query syntax: /search/syntax/.",
    openapi_url="/schema",
    docs_url="/docs",
    urls_namespace="api",
)


class Message(Schema):
    message: str


class Result(Schema):
    id: str = Field(description="Our permanent id, e.g. ATP-00000042.")
    source_id: str | None = Field(description="Publication number of an imported real patent; null if generated.")
    title: str
    origin: str
    score: float = Field(description="ts_rank (fulltext), cosine similarity (semantic) or fused score 0-1 (hybrid).")
    snippet: str = Field(description="HTML: escaped text with <mark> around the words that matched.")
    url: str
    published_at: str = Field(
        description="When we published it: ISO 8601, UTC, to the microsecond.",
        json_schema_extra={"format": "date-time"},
    )
    publication_date: datetime.date = Field(description="The date filters use: a reference patent's own date.")


class SearchResults(Schema):
    mode: str
    total: int
    total_is_exact: bool
    offset: int
    limit: int
    results: list[Result]


class SearchParameters(Schema):
    q: str = Field(
        min_length=1,
        max_length=query_language.MAX_QUERY_LENGTH,
        pattern=r"\S",  # something besides spaces
        description="Examiners' syntax or plain words. A query the syntax can't parse answers 400, saying why.",
    )
    mode: Literal["fulltext", "semantic", "hybrid"] | None = Field(
        None, description="Default: fulltext for examiners' syntax, hybrid for plain words."
    )
    before: datetime.date | None = Field(None, description="Published strictly before this date.")
    after: datetime.date | None = Field(
        None, description="Published strictly after this date (on or after `before`: a window nothing is in)."
    )
    origin: Literal["generated", "reference"] | None = None
    run: int | None = Field(None, description="Generation run id.")
    min_quality: float | None = None
    classification: str | None = Field(None, description="CPC subclass (H01M) or group prefix (H01M10/05).")
    sort: Literal["relevance", "date"] = "relevance"
    op: Literal["AND", "OR"] = Field("AND", description="Operator between bare words.")
    limit: int = Field(20, ge=1, le=searching.MAX_PAGE)
    offset: int = Field(
        0, ge=0, lt=searching.MAX_RESULTS, description=f"Results stop at the {searching.MAX_RESULTS:,}th."
    )


class Claim(Schema):
    number: int
    through: int | None = None
    text: str


class Provenance(Schema):
    model: str
    revision: str
    prompt_mode: str
    decoding: dict[str, object]
    seed: int | None
    run: int | None
    generated_at: str | None
    contributor: str | None = Field(
        None, description="Set when an outside contributor generated it: their public name (or anonymous)."
    )
    checks_rerun: list[str] | None = Field(
        None, description="The checks the server re-ran itself on a contributed text before publishing it."
    )


class MirrorCopy(Schema):
    origin_url: str = Field(description="The document's page at the site whose record this copy mirrors.")
    first_seen_at: str = Field(
        description="When this copy first stored it (ISO 8601, UTC); published_at stays the origin's.",
        json_schema_extra={"format": "date-time"},
    )


class Document(Schema):
    id: str
    url: str
    origin: str
    source_id: str | None
    source_date: str | None
    title: str
    abstract: str
    claims: list[Claim]
    text: str = Field(description="The canonical text; sha256 is its hash.")
    sha256: str
    published_at: str = Field(
        description="ISO 8601, UTC, to the microsecond.", json_schema_extra={"format": "date-time"}
    )
    publication_date: str
    cpc: list[str]
    quality_score: float | None
    provenance: Provenance | None
    mirror: MirrorCopy | None = Field(None, description="Set only on a mirror: where the record is the origin's.")


class Similar(Schema):
    id: str
    results: list[Result]


@api.exception_handler(searching.SearchError)
def search_error(request: HttpRequest, error: searching.SearchError) -> HttpResponse:
    return api.create_response(request, {"message": str(error)}, status=400)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return api.create_response(request, {"message": str(error)}, status=error.status_code)


@api.exception_handler(ValidationError)
def invalid_parameters(request: HttpRequest, error: ValidationError) -> HttpResponse:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'][1:]) or 'request'}: {problem['msg']}"
        for problem in error.errors
    )
    return api.create_response(request, {"message": problems, "detail": error.errors}, status=422)


# Any operation may also answer 429 (past the client's rate, with Retry-After) and 503 (the database is
# away for a moment, with Retry-After; allpatents/middleware.py), and the web server 414 to a request
# line over 8,190 bytes (gunicorn's largest limit), in HTML.
BUSY = {414: None, 429: Message, 503: Message}


def _once_each(request: HttpRequest) -> None:
    """Every parameter here is one value: a repeated one is refused, not silently read as its last."""
    if repeated := sorted(name for name, values in request.GET.lists() if len(values) > 1):
        raise HttpError(422, f"{', '.join(repeated)}: given more than once")


@api.get("/search", response={200: SearchResults, 400: Message, 422: Message, **BUSY}, summary="Search")
def search(request: HttpRequest, parameters: Query[SearchParameters]) -> SearchResults:
    _once_each(request)
    filters = searching.Filters(
        before=parameters.before,
        after=parameters.after,
        origin=parameters.origin,
        run=parameters.run,
        min_quality=parameters.min_quality,
        classification=parameters.classification,
    )
    results = searching.search(
        parameters.q,
        mode=parameters.mode,
        filters=filters,
        sort=parameters.sort,
        offset=parameters.offset,
        limit=min(parameters.limit, searching.MAX_RESULTS - parameters.offset),
        default_operator=parameters.op,
    )
    return SearchResults(
        mode=results.mode,
        total=results.total,
        total_is_exact=results.total_is_exact,
        offset=results.offset,
        limit=results.limit,
        results=[_result(request, hit) for hit in results.hits],
    )


@api.get("/patents/{identifier}", response={200: Document, 404: Message, 410: Message, **BUSY}, summary="A document")
def patent(request: HttpRequest, identifier: str) -> Document:
    document = _find(identifier)
    return Document(**document.record(request.build_absolute_uri(document.get_absolute_url())))


@api.get(
    "/patents/{identifier}/similar",
    response={200: Similar, 404: Message, 410: Message, 422: Message, **BUSY},
    summary="More like this",
)
def similar(
    request: HttpRequest,
    identifier: str,
    limit: int = Query(10, ge=1, le=100),
    before: datetime.date | None = Query(
        None, description="Published strictly before this date: for prior art, the application's priority date."
    ),
) -> Similar:
    _once_each(request)
    document = _find(identifier)
    hits = searching.similar(document, limit=limit, filters=searching.Filters(before=before))
    return Similar(id=document.public_id, results=[_result(request, hit) for hit in hits])


def _find(identifier: str) -> Patent:
    """Our id (ATP-00000042, or just 42) or a reference patent's publication number (US11213197)."""
    if "\x00" in identifier:  # in no publication number, and PostgreSQL text can't hold it
        raise HttpError(404, "No document with a NUL character in its id")
    number = parse_public_id(identifier) or (int(identifier) if identifier.isdigit() else None)
    found = (
        Patent.objects.filter(pk=number).first()
        if number is not None
        else Patent.objects.filter(source_id__iexact=identifier.strip()).first()
    )
    if found is not None:
        return found
    tombstone = Tombstone.objects.filter(pk=number).first() if number is not None else None
    if tombstone is not None:
        raise HttpError(
            410, f"{tombstone.public_id} was withdrawn on {tombstone.withdrawn_at:%Y-%m-%d}: {tombstone.reason}"
        )
    raise HttpError(404, f"No document {identifier}")


def _result(request: HttpRequest, hit: searching.Hit) -> Result:
    patent = hit.patent
    return Result(
        id=patent.public_id,
        source_id=patent.source_id,
        title=patent.title,
        origin=patent.origin,
        score=round(hit.score, 6),
        snippet=hit.snippet,
        url=request.build_absolute_uri(patent.get_absolute_url()),
        published_at=patent.published_at.isoformat(),
        publication_date=patent.publication_date,
    )
