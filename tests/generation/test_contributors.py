"""Outside contributors: tokens, leases, uploads checked on the server, and real contributor processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django.fixtures import Settings as SettingsWrapper
from pytest_django.live_server_helper import LiveServer

from allpatents.embedded import free_port
from generation.engine import DecodingParameters
from generation.likelihood import LikelihoodScore
from generation.models import Contributor, Generation, GenerationRun, PromptMode, WorkLease
from generation.pipeline import SampledBatch, record_batch
from generation.runs import create_run
from generation.work import CHECKS_RERUN
from search.models import Patent
from tests import factories
from tests.conftest import service_environment
from tests.factories import top_down
from tests.generation.test_pipeline import BELL, batch_of

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PARAMETERS = DecodingParameters(temperature=0.9, top_p=0.95, repetition_penalty=1.0, max_new_tokens=48)


def contributors_run(model: Path, count: int = 64) -> GenerationRun:
    return create_run(
        mode=PromptMode.TOP_DOWN, model_name=str(model), parameters=PARAMETERS, seed=5, requested_count=count,
        for_contributors=True,
    )  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def upload_of(unit: dict, texts: list[str] | None = None) -> str:
    outputs = [
        {"position": o["position"], "text": texts[i] if texts else o["prompt"] + "\nJunk", "new_tokens": 3,
         "finished": True}
        for i, o in enumerate(unit["outputs"])
    ]  # fmt: skip
    return json.dumps({"outputs": outputs, "cpu_seconds": 1.0, "wall_seconds": 1.0})


@pytest.mark.django_db
def test_every_contributor_endpoint_refuses_a_missing_unknown_or_revoked_token_with_401(client: Client) -> None:
    contributor, token = Contributor.issue(display_name="Ada")
    contributor.revoke()
    for headers in ({}, bearer("apc_unknown"), bearer(token)):
        for path in ("/api/work", "/api/work/1/results", "/api/work/1/release"):
            response = client.post(path, "{}", content_type="application/json", **headers)
            assert (response.status_code, response["WWW-Authenticate"]) == (401, "Bearer")
            assert response.json()["message"].startswith("A valid contributor token is required")


@pytest.mark.django_db
def test_a_unit_names_the_model_prompts_and_seeds_and_goes_to_one_contributor_until_its_lease_expires(
    client: Client, tiny_generator: Path, settings: SettingsWrapper
) -> None:
    run = contributors_run(tiny_generator, count=40)  # two units: 32 outputs and 8
    _, ada = Contributor.issue(display_name="Ada")
    _, bob = Contributor.issue()

    first = client.post("/api/work", **bearer(ada)).json()
    second = client.post("/api/work", **bearer(bob)).json()
    nothing = client.post("/api/work", **bearer(bob))

    assert (first["run"], first["batch"], second["batch"]) == (run.pk, 0, 1)
    assert [o["position"] for o in second["outputs"]] == list(range(32, 40))
    assert second["outputs"][0] == {"position": 32, "prompt": "# Patent\n\n## Title", "seed": 5 * 1_000_003 + 32}
    assert first["model"]["revision"].startswith("sha256:")
    assert first["model"]["bundled"] is False
    assert first["parameters"] == PARAMETERS.as_dict()
    assert (nothing.status_code, 1 <= int(nothing["Retry-After"]) <= 30) == (204, True)

    WorkLease.objects.filter(pk=first["id"]).update(expires_at=timezone.now())
    again = client.post("/api/work", **bearer(bob)).json()
    assert (again["batch"], WorkLease.objects.get(pk=again["id"]).contributor.public_name) == (0, "anonymous")


@pytest.mark.django_db
def test_a_unit_is_recorded_once_whoever_returns_it_and_a_late_upload_is_refused(
    client: Client, tiny_generator: Path
) -> None:
    run = contributors_run(tiny_generator, count=8)
    _, ada = Contributor.issue(display_name="Ada")
    _, bob = Contributor.issue(display_name="Bob")
    late = client.post("/api/work", **bearer(ada)).json()
    WorkLease.objects.filter(pk=late["id"]).update(expires_at=timezone.now())
    unit = client.post("/api/work", **bearer(bob)).json()

    recorded = client.post(f"/api/work/{unit['id']}/results", upload_of(unit), "application/json", **bearer(bob))
    refused = client.post(f"/api/work/{late['id']}/results", upload_of(late), "application/json", **bearer(ada))
    again = client.post(f"/api/work/{unit['id']}/results", upload_of(unit), "application/json", **bearer(bob))

    assert (recorded.status_code, recorded.json()["recorded"], recorded.json()["published"]) == (200, 8, [])
    assert (refused.status_code, refused.json()["message"]) == (
        409, "This unit was completed by someone else after its lease expired."
    )  # fmt: skip
    assert again.status_code == 409
    run.refresh_from_db()
    assert (run.status, run.generated_count, Generation.objects.filter(run=run).count()) == ("succeeded", 8, 8)
    assert set(Generation.objects.values_list("contributor__display_name", flat=True)) == {"Bob"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda outputs: outputs[:-1], "outputs: expected one for each position 0-7, once"),
        (lambda outputs: [*outputs[:-1], outputs[0]], "outputs: expected one for each position 0-7, once"),
        (lambda outputs: [{**outputs[0], "text": "# Patent\n\n## Claims\n1. A"}, *outputs[1:]],
         "outputs[0].text: does not start with the unit's prompt"),
        (lambda outputs: [{**outputs[0], "new_tokens": 10_000}, *outputs[1:]],
         "outputs[0].new_tokens: not between 0 and 48"),
        (lambda outputs: [{**outputs[0], "aborted": "bogus"}, *outputs[1:]],
         "outputs[0].aborted: 'bogus' is not a gate"),
        (lambda outputs: [{**outputs[0], "tokens": [10**9]}, *outputs[1:]],
         "outputs[0].tokens: at most 48 ids of the model's vocabulary"),
        (lambda outputs: [{**outputs[0], "tokens": [100, 200, 300]}, *outputs[1:]],
         "outputs[0].tokens: do not decode to the text"),
    ],
)  # fmt: skip
def test_an_upload_that_does_not_match_its_unit_is_refused_with_a_message_and_leaves_the_unit_open(
    client: Client, tiny_generator: Path, change: Callable[[list[dict]], list[dict]], message: str
) -> None:
    contributors_run(tiny_generator, count=8)
    _, token = Contributor.issue()
    unit = client.post("/api/work", **bearer(token)).json()
    body = json.loads(upload_of(unit))
    body["outputs"] = change(body["outputs"])

    response = client.post(f"/api/work/{unit['id']}/results", json.dumps(body), "application/json", **bearer(token))

    assert (response.status_code, response.json()["message"]) == (422, message)
    assert Generation.objects.count() == 0


@pytest.mark.django_db
def test_a_contributor_may_only_upload_to_its_own_units_and_may_give_one_back(
    client: Client, tiny_generator: Path
) -> None:
    contributors_run(tiny_generator, count=8)
    _, ada = Contributor.issue()
    _, bob = Contributor.issue()
    unit = client.post("/api/work", **bearer(ada)).json()

    foreign = client.post(f"/api/work/{unit['id']}/results", upload_of(unit), "application/json", **bearer(bob))
    given_back = client.post(f"/api/work/{unit['id']}/release", **bearer(ada))
    reissued = client.post("/api/work", **bearer(bob)).json()

    assert (foreign.status_code, foreign.json()["message"]) == (
        404,
        f"No work unit {unit['id']} was leased to this token.",
    )
    assert given_back.status_code == 200
    assert reissued["batch"] == unit["batch"]


@pytest.mark.django_db
def test_a_human_written_patent_uploaded_as_a_sample_is_refused_by_the_likelihood_check(
    client: Client, tiny_generator: Path
) -> None:
    run = contributors_run(tiny_generator, count=1)
    _, token = Contributor.issue(display_name="Mallory")
    unit = client.post("/api/work", **bearer(token)).json()
    outcome = client.post(
        f"/api/work/{unit['id']}/results", upload_of(unit, [top_down()]), "application/json", **bearer(token)
    ).json()

    assert (outcome["published"], outcome["rejections"]) == ([], {"implausible_likelihood": 1})
    row = Generation.objects.get(run=run)
    assert row.likelihood is not None
    assert not LikelihoodScore(**{**row.likelihood, "mean_log_q": 0}).plausible


@pytest.mark.django_db
def test_a_contributor_whose_uploads_fail_the_likelihood_check_is_throttled_then_suspended(
    client: Client, tiny_generator: Path
) -> None:
    contributor, token = Contributor.issue()
    run = contributors_run(tiny_generator, count=20 * 32)
    Generation.objects.bulk_create(
        Generation(run=run, batch=99, position=i, seed=0, prompt="", text="", new_tokens=1, finished=True,
                   accepted=False, reasons=["implausible_likelihood"], likelihood={"z": -30.0}, contributor=contributor)
        for i in range(20)
    )  # fmt: skip
    from generation.work import _review

    _review(contributor)
    contributor.refresh_from_db()
    assert contributor.standing == "suspended"
    refused = client.post("/api/work", **bearer(token))
    assert (refused.status_code, refused.json()["message"]) == (
        403, "This token is suspended: too many uploads failed the server's checks."
    )  # fmt: skip

    Contributor.objects.filter(pk=contributor.pk).update(suspended_at=None)
    Generation.objects.filter(position__gte=6).delete()
    _review(contributor)
    throttled = client.post("/api/work", **bearer(token))
    assert (throttled.status_code, 3500 < int(throttled["Retry-After"]) <= 3601) == (429, True)


class PlausibleEverywhere:
    """record_batch's Provenance with the score fixed: for the publishing path, not for the check itself."""

    def __init__(self, contributor: Contributor) -> None:
        self.contributor, self.checks_rerun = contributor, list(CHECKS_RERUN)

    def score(self, index: int) -> LikelihoodScore:
        return LikelihoodScore(tokens=100, outside=0.0, z=0.1, mean_log_q=-1.0)


@pytest.mark.django_db
def test_a_published_contribution_records_who_generated_it_and_which_checks_the_server_reran() -> None:
    contributor, _ = Contributor.issue(display_name="Ada")
    run = GenerationRun.objects.create(
        mode=PromptMode.BOTTOM_UP, model_name="tiny", parameters={"seed": 1}, requested_count=1, status="running",
        for_contributors=True,
    )  # fmt: skip
    sampled: SampledBatch = batch_of(BELL)

    assert record_batch(run, 0, sampled, contributed=PlausibleEverywhere(contributor)) is True

    patent = Patent.objects.get()
    record = patent.record("https://example.org/")
    assert (record["provenance"]["contributor"], record["provenance"]["checks_rerun"]) == ("Ada", CHECKS_RERUN)
    row = Generation.objects.get()
    assert (row.contributor, row.likelihood) == (contributor, {"tokens": 100, "outside": 0.0, "z": 0.1})
    page = Client().get("/contributors/")
    assert b"<td>Ada</td>" in page.content
    patent_page = Client().get(patent.get_absolute_url()).content.decode()
    assert "a contributor, on their own computer; the server re-ran gates, novelty, likelihood" in patent_page


def test_a_contributor_retries_with_backoff_while_the_server_is_away_and_stops_cleanly(
    tmp_path: Path, stop_all: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()  # a port nothing listens on
    log = tmp_path / "contributor.log"
    stop_all.append(process := contributor_process(f"http://127.0.0.1:{port}", "apc_x", log))
    wait_for(log, "retrying in 2 s")

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=30) == 0
    lines = log.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines if "retrying" in line][:2] == [
        "server unreachable ([Errno 111] Connection refused); retrying in 1 s",
        "server unreachable ([Errno 111] Connection refused); retrying in 2 s",
    ]
    assert lines[-1].endswith("stopped")


# --- real contributor processes against a live server ------------------------------------


def contributor_process(server: str, token: str, log: Path) -> subprocess.Popen[bytes]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE", "REDIS"))}
    return subprocess.Popen(
        [sys.executable, "-m", "allpatents.contribute", "--server", server, "--token", token, "--slots", "8"],
        cwd=BASE_DIR,
        env={**environment, "PYTHONUNBUFFERED": "1"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for(log: Path, text: str, *, count: int = 1, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} x{count} not in {log}:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture
def stop_all() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def served(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """`make run`'s stack on loopback (manage.py serve: web server, worker, beat) over the test database; its URL.

    Leases expire after 4 s, so a killed contributor's unit comes back within the test.
    """
    factories.patent()  # a store that is not empty: serve imports no sample corpus
    port = free_port()
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=BASE_DIR,
        env={**service_environment(), "WORK_LEASE_SECONDS": "4", "PYTHONUNBUFFERED": "1"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"{url}/contributors/", timeout=10).close()
            break
        except OSError:
            assert serve.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.5)
    yield url
    serve.terminate()  # serve stops its worker and web server with it
    assert serve.wait(timeout=60) == 0, log.read_text(errors="replace")


def test_two_contributor_processes_complete_a_run_exactly_once_when_one_is_killed_mid_unit(
    served: str,
    tiny_generator: Path,
    tmp_path: Path,
    stop_all: list[subprocess.Popen[bytes]],
) -> None:
    run = contributors_run(tiny_generator, count=5 * 32)
    ada, ada_token = Contributor.issue(display_name="Ada")
    bob, bob_token = Contributor.issue(display_name="Bob")
    ada_log, bob_log = tmp_path / "ada.log", tmp_path / "bob.log"

    stop_all.append(ada_process := contributor_process(served, ada_token, ada_log))
    wait_for(ada_log, "leased unit")
    stop_all.append(bob_process := contributor_process(served, bob_token, bob_log))
    wait_for(ada_log, "leased unit", count=2)  # Ada finished one unit and holds a second
    ada_process.send_signal(signal.SIGKILL)
    ada_process.wait()
    killed = WorkLease.objects.filter(contributor=ada, returned_at=None).get()

    deadline = time.monotonic() + 180
    while GenerationRun.objects.get(pk=run.pk).status != GenerationRun.Status.SUCCEEDED:
        assert time.monotonic() < deadline, bob_log.read_text()
        time.sleep(0.5)
    bob_process.send_signal(signal.SIGINT)
    assert bob_process.wait(timeout=30) == 0

    run.refresh_from_db()
    rows = Generation.objects.filter(run=run)
    assert (run.generated_count, rows.count(), sorted(rows.values_list("position", flat=True))) == (
        160, 160, list(range(160))
    )  # fmt: skip
    assert run.accepted_count == Patent.objects.filter(generation_run=run).count()
    assert WorkLease.objects.get(run=run, batch=killed.batch, returned_at__isnull=False).contributor == bob
    assert rows.filter(batch=killed.batch, contributor=bob).count() == 32
    assert rows.filter(contributor=ada).count() >= 32  # Ada's first unit was hers
    assert bob_log.read_text().rstrip().endswith("stopped")


def test_a_contributor_stopped_with_ctrl_c_gives_its_unit_back(
    live_server: LiveServer,
    transactional_db: None,
    tiny_generator: Path,
    tmp_path: Path,
    stop_all: list[subprocess.Popen[bytes]],
) -> None:
    contributors_run(tiny_generator, count=32)
    _, token = Contributor.issue()
    log = tmp_path / "contributor.log"
    stop_all.append(process := contributor_process(live_server.url, token, log))
    wait_for(log, "leased unit")

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=60) == 0
    lease = WorkLease.objects.get()
    assert (lease.released_at is not None, lease.returned_at) == (True, None)
    assert "gave unit" in log.read_text()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def upload_like(unit: dict) -> st.SearchStrategy[object]:
    """Bodies near a real upload (each field replaced by anything) and bodies of anything at all."""
    genuine = json.loads(upload_of(unit))
    output = genuine["outputs"][0]
    mutated_output = st.fixed_dictionaries({key: st.one_of(st.just(value), JSON) for key, value in output.items()})
    near = st.fixed_dictionaries(
        {"outputs": st.lists(mutated_output, max_size=3) | JSON, "cpu_seconds": JSON, "wall_seconds": JSON}
    )
    return near | JSON


@pytest.mark.django_db
def test_any_body_or_id_sent_by_a_contributor_gets_a_4xx_with_a_message_never_a_5xx(
    client: Client, tiny_generator: Path, settings: SettingsWrapper
) -> None:
    settings.RATE_LIMIT_CONTRIBUTOR = "1000000/m"
    contributors_run(tiny_generator, count=8)
    _, token = Contributor.issue()
    unit = client.post("/api/work", **bearer(token)).json()

    @hypothesis_settings(max_examples=150, deadline=None)
    # None stands for the unit the token holds now (it is given back and leased again as the test goes).
    @given(body=upload_like(unit), unit_id=st.one_of(st.none(), st.integers(), st.text(max_size=12)))
    def every_answer_is_a_refusal_with_a_reason(body: object, unit_id: object) -> None:
        path = quote(str(unit["id"] if unit_id is None else unit_id), safe="")
        for url in (f"/api/work/{path}/results", f"/api/work/{path}/release", "/api/work"):
            response = client.post(url, json.dumps(body), "application/json", **bearer(token))
            assert response.status_code < 500, (url, body, response.content[:500])
            if response.status_code >= 400 and not response["Content-Type"].startswith("application/json"):
                assert response.status_code == 404, (url, body)  # an id that makes a path no endpoint has
            elif response.status_code >= 400:
                answer = response.json()
                assert answer.get("message") or answer.get("detail"), (url, body, answer)
            if url == "/api/work" and response.status_code == 200:
                unit.update(response.json())  # the unit given back above, leased again for the next body

    every_answer_is_a_refusal_with_a_reason()
    assert Generation.objects.filter(run__for_contributors=True).count() in (0, 8)  # a whole unit, or nothing
