"""The contributors' API: lease a work unit, upload its outputs, or give it back. Bearer tokens only.

Mounted under /api/work by search/api.py, so it shares the API's error shape ({"message": ...}),
its per-address rate limit and its OpenAPI schema; each token has its own limit on top.
"""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import get_usage
from ninja import Field, Router, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer

from generation import work
from generation.models import Contributor, WorkLease


class ContributorToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Contributor | None:
        contributor = Contributor.objects.for_token(token)
        if contributor is None:
            return None
        usage = get_usage(
            request,
            group="contributor",
            key=lambda _group, _request: contributor.token_digest,
            rate=settings.RATE_LIMIT_CONTRIBUTOR,
            method=["POST"],
            increment=True,
        )
        if usage and usage["should_limit"]:
            raise work.WorkRefused(429, "Too many requests with this token.", max(1, int(usage["time_left"])))
        return contributor


router = Router(auth=ContributorToken(), tags=["contributors"])


class Message(Schema):
    message: str


class ModelReference(Schema):
    name: str = Field(description='A hub id, or "bundled" for the offline generator shipped with the code.')
    revision: str = Field(description="The hub commit, or sha256: of the weights; a client checks it before use.")
    bundled: bool


class UnitOutput(Schema):
    position: int
    prompt: str
    seed: int


class WorkUnit(Schema):
    id: int
    run: int
    batch: int
    expires_at: str = Field(description="Upload before this (ISO 8601, UTC); after it the unit may go to another.")
    model: ModelReference
    parameters: dict[str, float | int | bool]
    outputs: list[UnitOutput]


class OutputUpload(Schema):
    position: int
    text: str = Field(description="The prompt and its continuation, as decoded.")
    new_tokens: int
    finished: bool = Field(description="Ended by the model, not cut at max_new_tokens.")
    aborted: str | None = Field(None, description="The gate early abort stopped it at, if any.")
    tokens: list[int] | None = Field(
        None, description="The continuation's token ids as drawn; they must decode to text, and are scored as given."
    )


class Results(Schema):
    outputs: list[OutputUpload]
    cpu_seconds: float = Field(0.0, ge=0, description="The client's CPU time for sampling the unit.")
    wall_seconds: float = Field(0.0, ge=0)
    weights: Literal["int8", "fp32"] = Field(
        "int8", description="The weights sampled with: the engine's int8 on a CPU, fp32 on a GPU."
    )


class Outcome(Schema):
    recorded: int
    published: list[str] = Field(description="Ids of the documents this unit published.")
    rejections: dict[str, int]
    verification_cpu_seconds: float


REFUSED = {401: Message, 403: Message, 404: Message, 409: Message, 422: Message, 429: Message, 503: Message}


def refused(request: HttpRequest, error: work.WorkRefused) -> HttpResponse:
    response = JsonResponse({"message": str(error)}, status=error.status)
    if error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


def unauthorized(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    message = "A valid contributor token is required: send Authorization: Bearer <token>."
    response = JsonResponse({"message": message}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


def _lease(request: HttpRequest, unit_id: int) -> WorkLease:
    lease = WorkLease.objects.select_related("run", "contributor").filter(pk=unit_id, contributor=request.auth).first()
    if lease is None:
        raise HttpError(404, f"No work unit {unit_id} was leased to this token.")
    return lease


@router.post("", response={200: WorkUnit, 204: None, **REFUSED}, summary="Lease a work unit")
def lease(request: HttpRequest) -> WorkUnit | HttpResponse:
    """The next batch nobody holds; 204 (with Retry-After) when there is none right now."""
    leased = work.lease_unit(request.auth)
    if leased is None:
        response = HttpResponse(status=204)
        response["Retry-After"] = str(work.retry_after())
        return response
    return WorkUnit(**work.unit(leased))


@router.post("/{unit_id}/results", response={200: Outcome, **REFUSED}, summary="Upload a unit's outputs")
def results(request: HttpRequest, unit_id: int, body: Results) -> Outcome:
    uploads = [work.Upload(**output.dict()) for output in body.outputs]
    outcome = work.accept_results(
        _lease(request, unit_id),
        uploads,
        cpu_seconds=body.cpu_seconds,
        wall_seconds=body.wall_seconds,
        int8=body.weights == "int8",
    )
    return Outcome(**outcome.__dict__)


@router.post("/{unit_id}/release", response={200: Message, **REFUSED}, summary="Give a unit back unfinished")
def release(request: HttpRequest, unit_id: int) -> Message:
    work.release(_lease(request, unit_id))
    return Message(message=f"Unit {unit_id} given back.")
