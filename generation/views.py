from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from generation.forms import RunForm
from generation.models import Contributor, GenerationRun
from generation.pipeline import HELD
from generation.runs import create_run


@staff_member_required
def runs(request: HttpRequest) -> HttpResponse:
    form = RunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        run = create_run(started_by=request.user, **form.run_fields())
        return redirect("generation:run", run.pk)
    recent = GenerationRun.objects.select_related("started_by")[:50]
    context = {"form": form, "runs": recent, "totals": GenerationRun.objects.totals()}
    return render(request, "generation/runs.html", context)


@staff_member_required
@require_GET
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    generation_run = get_object_or_404(GenerationRun, pk=run_id)
    outputs = generation_run.generations.select_related("patent", "duplicate_of")
    rejected = outputs.filter(accepted=False).exclude(reasons=[HELD])
    return render(
        request,
        "generation/run.html",
        {
            "run": generation_run,
            "accepted": outputs.filter(accepted=True)[:5],
            "held": outputs.filter(reasons=[HELD])[:5],
            "rejected": rejected.order_by("-quality_score", "position")[:5],
        },
    )


@staff_member_required
@require_GET
def run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    return JsonResponse(get_object_or_404(GenerationRun, pk=run_id).progress())


@staff_member_required
@require_POST
def cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    get_object_or_404(GenerationRun, pk=run_id).cancel()
    return redirect("generation:run", run_id)


@require_GET
def contributors(request: HttpRequest) -> HttpResponse:
    """The public page of contributions: who helped generate (by the name they chose), and how it went."""
    people = (
        Contributor.objects.with_totals()
        .filter(Q(units__gt=0) | Q(outputs__gt=0))
        .order_by("-published", "-units", "created_at")
    )
    rejections = people.rejections()
    rows = [(person, rejections.get(person.pk, {})) for person in people]
    return render(request, "generation/contributors.html", {"rows": rows})
