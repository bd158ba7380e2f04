"""The gates' calibration: real patents pass, each kind of corruption fails, texts from anywhere are judged."""

import json
import random
from pathlib import Path

import pytest
from django.core.management import call_command

from generation.calibration import (
    KINDS,
    Case,
    as_numbered_at_grant,
    complete_patents,
    corrupted_cases,
    judge,
    real_cases,
)
from generation.checking import check_patent
from search.models import Patent

RECORDS = complete_patents()[:12]


def test_the_bundled_real_patents_with_complete_claims_are_the_408_of_both_corpora() -> None:
    assert len(complete_patents()) == 408


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind not in {"verbatim_copy", "light_rewording"}])
def test_every_corruption_made_by_text_is_rejected_by_the_text_gates(kind: str) -> None:
    cases = corrupted_cases(kind, RECORDS, random.Random(0))

    judgements = judge(cases, novelty=False)

    # A text cut mid-claim may be published trimmed: without the claim it was cut in.
    assert sum(not judgement.accepted or judgement.trimmed for judgement in judgements) >= 0.9 * len(cases)


def test_real_patents_pass_in_both_orders_and_parse_to_the_same_document() -> None:
    cases = real_cases(RECORDS, {})

    judgements = judge(cases, novelty=False)

    assert sum(judgement.accepted for judgement in judgements) >= 0.9 * len(cases)
    for top_down, bottom_up in zip(cases[::2], cases[1::2], strict=True):
        assert check_patent(top_down.text).parsed == check_patent(bottom_up.text).parsed


def test_claims_the_record_numbers_with_gaps_are_renumbered_with_their_citations() -> None:
    claims = ["7. A reel comprising: a drum.", "8. The reel of claim 7, wherein", "12. The reel of claims 7 or 8."]

    assert as_numbered_at_grant(claims) == [
        "1. A reel comprising: a drum.",
        "2. The reel of claim 1, wherein",
        "3. The reel of claims 1 or 2.",
    ]
    in_order = ["1-3. (canceled)", "4. A reel comprising: a drum.", "5. The reel of claim 9."]
    assert as_numbered_at_grant(in_order) == in_order


def test_a_verbatim_copy_of_a_stored_patent_is_rejected_and_the_patent_itself_is_new_against_the_others(
    imported: dict[str, Patent],
) -> None:
    truck = imported["US11147202B2"]
    text = truck.text

    copy, itself = judge([Case(text), Case(text, exclude=truck.pk)])

    assert copy.reasons == ["near_duplicate"]
    assert itself.reasons == []


def test_check_generated_prints_a_verdict_for_each_line(
    tmp_path: Path, imported: dict[str, Patent], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.generation.test_checking import bottom_up, top_down

    lines = [{"text": top_down(), "finished": True}, {"text": bottom_up(), "finished": False}]
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    call_command("check_generated", str(path))

    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["accepted"], p["reasons"]) for p in printed] == [(True, []), (False, ["truncated"])]
    assert printed[0]["title"] == "Collapsible hose reel with a ratchet lock"
