"""Staff-only run pages: start, watch, cancel; everyone else is refused."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from generation.models import Generation, GenerationRun, PromptMode

pytestmark = pytest.mark.django_db

FORM = {
    "mode": "top_down", "count": "40", "seeds": "", "model": "/models/tiny", "temperature": "0.7", "top_p": "0.9",
    "top_k": "0", "repetition_penalty": "1.05", "max_new_tokens": "512", "seed": "3", "structured": "on",
}  # fmt: skip


@pytest.fixture
def staff(client: Client) -> User:
    user = User.objects.create_user("alice", password="pw", is_staff=True)
    client.force_login(user)
    return user


@pytest.mark.parametrize("path", ["/runs/", "/runs/1/", "/runs/1/progress/"])
def test_anonymous_and_non_staff_users_are_refused(client: Client, path: str) -> None:
    GenerationRun.objects.create(id=1, mode=PromptMode.TOP_DOWN, model_name="m", requested_count=1)
    assert client.get(path).status_code == 302  # to the login page
    client.force_login(User.objects.create_user("bob", password="pw"))
    assert client.get(path).status_code == 302
    assert client.post("/runs/1/cancel/").status_code == 302
    assert GenerationRun.objects.get().status == GenerationRun.Status.QUEUED


def test_staff_start_a_run_with_its_parameters_and_it_is_queued(
    client: Client, staff: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/runs/", FORM)

    run = GenerationRun.objects.get()
    assert response["Location"] == f"/runs/{run.pk}/"
    assert (run.started_by, run.mode, run.model_name, run.requested_count) == (staff, "top_down", "/models/tiny", 40)
    assert run.parameters == {
        "temperature": 0.7, "top_p": 0.9, "top_k": 0, "repetition_penalty": 1.05, "max_new_tokens": 512, "seed": 3,
        "structured": True, "early_abort": False,
    }  # fmt: skip
    assert len(callbacks) == 2  # 40 patents: two batches of 32, queued after the commit


def test_a_seeded_run_needs_seeds(client: Client, staff: User) -> None:
    response = client.post("/runs/", {**FORM, "mode": "seeded"})
    assert response.status_code == 200
    assert "A seeded run needs at least one title or topic." in response.content.decode()
    assert not GenerationRun.objects.exists()


def test_run_page_and_progress_show_the_counters(client: Client, staff: User) -> None:
    run = GenerationRun.objects.create(
        mode=PromptMode.BOTTOM_UP, model_name="m", requested_count=100, status=GenerationRun.Status.RUNNING,
        generated_count=40, accepted_count=4, rejected_count=36, rejections={"truncated": 30, "repetition": 6},
        tokens_generated=40_000, cpu_seconds=400.0, wall_seconds=200.0,
    )  # fmt: skip

    page = client.get(f"/runs/{run.pk}/").content.decode()
    progress = client.get(f"/runs/{run.pk}/progress/").json()

    assert '<progress data-field="bar" max="100" value="40"' in page
    assert "<li>truncated: 30</li>" in page
    assert progress == {
        "status": "running", "requested": 100, "generated": 40, "accepted": 4, "rejected": 36,
        "rejections": {"truncated": 30, "repetition": 6}, "tokens": 40000, "tokens_per_second": 200.0,
        "eta_seconds": 300.0, "hit_rate": 0.1, "cpu_seconds_per_published": 100.0, "error": "",
    }  # fmt: skip


def test_run_page_shows_held_outputs_apart_from_the_rejected(client: Client, staff: User) -> None:
    run = GenerationRun.objects.create(mode=PromptMode.TOP_DOWN, model_name="m", requested_count=2)
    common = {"run": run, "batch": 0, "seed": 1, "prompt": "# Patent", "new_tokens": 9, "finished": True}
    Generation.objects.create(**common, position=0, text="HELD TEXT", accepted=False, reasons=["held"])
    Generation.objects.create(**common, position=1, text="SALAD TEXT", accepted=False, reasons=["monotonous"])

    page = client.get(f"/runs/{run.pk}/").content.decode()
    held, rejected = page.split("<h2>Held, not published</h2>")[1].split("<h2>Rejected samples</h2>")

    assert "HELD TEXT" in held
    assert "SALAD TEXT" not in held
    assert "SALAD TEXT" in rejected
    assert "HELD TEXT" not in rejected


def test_staff_cancel_a_run(client: Client, staff: User) -> None:
    run = GenerationRun.objects.create(mode=PromptMode.TOP_DOWN, model_name="m", requested_count=10)

    client.post(f"/runs/{run.pk}/cancel/")

    run.refresh_from_db()
    assert run.status == GenerationRun.Status.CANCELLED
    assert run.finished_at is not None


def test_runs_page_shows_hit_rate_and_cost_over_all_runs(client: Client, staff: User) -> None:
    for generated, accepted, cpu in [(100, 5, 500.0), (60, 3, 300.0)]:
        GenerationRun.objects.create(
            mode=PromptMode.TOP_DOWN, model_name="m", requested_count=generated, generated_count=generated,
            accepted_count=accepted, cpu_seconds=cpu,
        )  # fmt: skip

    totals = client.get("/runs/").context["totals"]

    assert (totals["generated"], totals["accepted"], totals["hit_rate"], totals["cpu_seconds_per_published"]) == (
        160, 8, 0.05, 100.0,
    )  # fmt: skip
