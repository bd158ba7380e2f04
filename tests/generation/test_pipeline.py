"""A run's batches: checked, de-duplicated, published once, counted; end to end through a real worker."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from generation.llm import BUNDLED_GENERATOR, HOLD_ATTRIBUTE, DecodingParameters, Sample
from generation.models import Generation, GenerationRun, PromptMode
from generation.pipeline import SampledBatch, record_batch, run_batch
from generation.runs import create_run
from search.models import Origin, Patent
from tests.factories import bottom_up, top_down

BELL = (
    "# Patent\n\n## Claims\n"
    "1. A bicycle bell comprising: a dome mounted on a clamp that grips a handlebar; a striker pivoted under the "
    "dome; and a thumb lever that swings the striker against the dome.\n"
    "2. The bicycle bell of claim 1, wherein a coil spring returns the thumb lever after each stroke.\n\n"
    "## Abstract\nA bicycle bell has a dome on a handlebar clamp. A thumb lever swings a pivoted striker "
    "against the dome, and a coil spring returns the lever so the rider can ring it again at once.\n\n"
    "## Title\nBicycle bell with a thumb-driven striker\n"
)
PARAMETERS = {"temperature": 0.9, "top_p": 0.95, "top_k": 0, "repetition_penalty": 1.0, "max_new_tokens": 24}


def new_run(model_name: str = "tiny", requested: int = 5, **fields: object) -> GenerationRun:
    defaults: dict[str, object] = {"status": GenerationRun.Status.RUNNING}
    return GenerationRun.objects.create(
        mode=PromptMode.TOP_DOWN, model_name=model_name, parameters={**PARAMETERS, "seed": 7},
        requested_count=requested, **{**defaults, **fields},
    )  # fmt: skip


def batch_of(*texts: str) -> SampledBatch:
    return SampledBatch(
        prompts=["# Patent\n\n## Title"] * len(texts),
        seeds=[11] * len(texts),
        samples=[Sample(text=text, new_tokens=100, finished=True) for text in texts],
        model_revision="sha256:0123456789abcdef",
        cpu_seconds=2.0,
        wall_seconds=1.5,
    )


@pytest.mark.django_db
def test_a_batch_publishes_the_good_new_texts_and_records_the_rest(imported: dict[str, Patent]) -> None:
    run = new_run()
    truck = imported["US11147202B2"]
    copy_of_truck = top_down(
        title=truck.title, abstract=truck.abstract, claims=[f"{c['number']}. {c['text']}" for c in truck.claims]
    )

    texts = [top_down(), "# Patent\n\n## Title\nJunk", copy_of_truck, bottom_up(title="Reel"), BELL]

    record_batch(run, 0, batch_of(*texts))

    run.refresh_from_db()
    assert (run.generated_count, run.accepted_count, run.rejected_count) == (5, 2, 3)
    assert run.rejections == {"missing_section": 1, "near_duplicate": 2}
    assert (run.tokens_generated, run.cpu_seconds, run.status) == (500, 2.0, GenerationRun.Status.SUCCEEDED)
    rows = list(Generation.objects.filter(run=run).order_by("position"))
    assert [row.accepted for row in rows] == [True, False, False, False, True]
    # A copy of a stored real patent, and a retitled copy of a text published in the same batch.
    assert (rows[2].duplicate_of, rows[3].duplicate_of) == (truck, rows[0].patent)
    assert rows[4].patent.title == "Bicycle bell with a thumb-driven striker"
    published = rows[0].patent
    assert published is not None
    assert (published.origin, published.generation_run, published.seed, published.prompt_mode) == (
        Origin.GENERATED, run, 11, PromptMode.TOP_DOWN,
    )  # fmt: skip
    assert published.decoding == {**PARAMETERS, "seed": 7}
    assert published.title == "Collapsible hose reel with a ratchet lock"
    assert published.embedding is not None


@pytest.mark.django_db
def test_a_demonstration_generators_good_outputs_are_held_never_published() -> None:
    run = new_run(requested=2)
    sampled = dataclasses.replace(batch_of(top_down(), "# Patent\n\n## Title\nJunk"), holds_outputs=True)

    record_batch(run, 0, sampled)

    run.refresh_from_db()
    assert (run.accepted_count, run.rejections) == (0, {"held": 1, "missing_section": 1})
    held = Generation.objects.get(run=run, position=0)
    assert (held.accepted, held.reasons, held.patent) == (False, ["held"], None)
    assert not Patent.objects.filter(origin=Origin.GENERATED).exists()


def test_the_bundled_generator_is_a_demonstration_generator_whose_outputs_are_held() -> None:
    config = json.loads((BUNDLED_GENERATOR / "config.json").read_text())

    assert config[HOLD_ATTRIBUTE] is True


@pytest.mark.django_db
def test_an_output_stopped_by_early_abort_is_counted_under_the_gate_it_failed() -> None:
    run = new_run(requested=2)
    sampled = batch_of(top_down(), "# Patent\n\n## Claims\n1. A detecting")
    sampled.samples[1] = Sample(text=sampled.samples[1].text, new_tokens=5, finished=False, aborted="claim_1_form")

    record_batch(run, 0, sampled)

    run.refresh_from_db()
    assert (run.generated_count, run.accepted_count, run.rejections) == (2, 1, {"claim_1_form": 1})
    assert Generation.objects.get(run=run, position=1).reasons == ["claim_1_form"]


@pytest.mark.django_db
def test_a_batch_recorded_twice_publishes_once() -> None:
    run = new_run()
    record_batch(run, 0, batch_of(top_down()))
    record_batch(run, 0, batch_of(top_down()))

    run.refresh_from_db()
    assert (run.generated_count, Patent.objects.filter(origin=Origin.GENERATED).count()) == (1, 1)


@pytest.mark.django_db
def test_a_model_that_cannot_be_loaded_fails_the_run_naming_the_model_and_the_setting() -> None:
    run = new_run(model_name="/nonexistent/model", requested=1, status=GenerationRun.Status.QUEUED)

    with pytest.raises(RuntimeError):
        run_batch(run_id=run.pk, batch=0)

    run.refresh_from_db()
    assert run.status == GenerationRun.Status.FAILED
    assert "'/nonexistent/model'" in run.error
    assert "GENERATOR_MODEL" in run.error


@pytest.mark.slow
def test_a_run_goes_end_to_end_through_a_real_worker(
    celery_worker_process: subprocess.Popen[bytes], tiny_generator: Path
) -> None:
    run = create_run(
        mode=PromptMode.TOP_DOWN, model_name=str(tiny_generator), parameters=DecodingParameters(**PARAMETERS),
        seed=7, requested_count=10,
    )  # fmt: skip

    import time

    deadline = time.monotonic() + 180
    while run.status in {GenerationRun.Status.QUEUED, GenerationRun.Status.RUNNING} and time.monotonic() < deadline:
        time.sleep(0.5)
        run.refresh_from_db()
    assert run.status == GenerationRun.Status.SUCCEEDED, run.error
    assert run.generated_count == 10
    assert run.accepted_count + run.rejected_count == 10
    assert run.tokens_generated > 0
    assert run.model_revision.startswith("sha256:")
    assert sorted(Generation.objects.filter(run=run).values_list("position", flat=True)) == list(range(10))


@pytest.mark.django_db
def test_generate_command_runs_inline_and_reports_the_hit_rate(
    tiny_generator: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import call_command

    call_command("generate", "--inline", "--count", "3", "--model", str(tiny_generator), "--max-new-tokens", "16")

    run = GenerationRun.objects.get()
    assert (run.status, run.generated_count, run.parameters["max_new_tokens"]) == (
        GenerationRun.Status.SUCCEEDED, 3, 16,
    )  # fmt: skip
    assert capsys.readouterr().out.startswith(f"Run {run.pk}: 3 generated, {run.accepted_count} published")


@pytest.mark.django_db
def test_a_cancelled_run_skips_its_remaining_batches() -> None:
    run = new_run(requested=100, status=GenerationRun.Status.QUEUED)

    assert run.cancel() is True
    run_batch(run_id=run.pk, batch=0)  # the model is never loaded: "tiny" does not exist

    run.refresh_from_db()
    assert (run.status, run.generated_count, run.generations.count()) == (GenerationRun.Status.CANCELLED, 0, 0)
    assert run.cancel() is False  # already stopped


def test_a_nul_byte_from_the_model_becomes_a_visible_replacement_character() -> None:
    from generation.llm import storable_text

    assert storable_text("# Patent\n\n## Title\nA reel\x00") == "# Patent\n\n## Title\nA reel\ufffd"


@pytest.mark.slow
def test_bench_hit_rate_measures_both_modes_and_leaves_the_store_as_it_was(
    tiny_generator: Path, tmp_path: Path, imported: dict[str, Patent], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from django.core.management import call_command

    before = Patent.objects.count()
    output = tmp_path / "published.jsonl"

    call_command(
        "bench_hit_rate", "--count", "2", "--model", str(tiny_generator), "--max-new-tokens", "48",
        "--output", str(output),
    )  # fmt: skip

    result = json.loads(capsys.readouterr().out)
    assert result["generated"] == 4
    assert result["hit_rate"] == result["published"] / 4
    assert sum(result["rejections"].values()) >= 4 - result["published"]
    assert len(output.read_text().splitlines()) == result["published"]
    assert Patent.objects.count() == before
    assert not GenerationRun.objects.exists()
