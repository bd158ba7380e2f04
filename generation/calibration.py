"""Holding the gates against texts whose answer is known: real patents pass, corrupted ones don't.

`manage.py bench_gates` renders every bundled real patent with complete claims in
both orders, as the model writes them, and makes corrupted variants of them,
one kind at a time; `manage.py check_generated` runs the same gates on texts
from anywhere. Both judge a text exactly as a generation batch does: the text
gates of generation/checking.py, then novelty against everything stored.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from generation.checking import CITED_CLAIM, CLAIM_START, check_patent
from generation.pipeline import check_novelty
from generation.training import DATA_DIR, EXTRA_CORPUS, bottom_up_text, read_corpus, top_down_text
from search.embedding import DocumentText, embed_documents
from search.importing import SAMPLE_CORPUS
from search.models import Patent

# Outputs of a weakly trained generator (see data/gates/README.md): patent-shaped, saying nothing.
WEAK_OUTPUTS = DATA_DIR / "gates" / "weak-generator.jsonl"
KINDS = (
    "spliced",
    "misnumbered",
    "looped",
    "cut_mid_claim",
    "salad",
    "weak_generator",
    "verbatim_copy",
    "light_rewording",
)
# Rewordings a copier might make: the same claim in other patent words.
_REWORDINGS = {
    "comprising": "including",
    "including": "comprising",
    "said": "the",
    "wherein": "in which",
    "plurality of": "multiple",
    "configured to": "adapted to",
    "adapted to": "configured to",
    "coupled": "connected",
    "connected": "coupled",
    "first": "primary",
    "second": "secondary",
}
_REWORDING = re.compile(r"\b(" + "|".join(map(re.escape, _REWORDINGS)) + r")\b")
_CLAIM_NUMBER = re.compile(r"^\s*\d+\s*[.)]\s*")


@dataclass(frozen=True)
class Case:
    text: str
    finished: bool = True
    exclude: int | None = None  # a stored document the novelty check leaves out (the real patent itself)


@dataclass
class Judgement:
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0
    title: str = ""
    trimmed: bool = False  # accepted without its incomplete last claim

    @property
    def accepted(self) -> bool:
        return not self.reasons


def judge(cases: Sequence[Case], *, novelty: bool = True) -> list[Judgement]:
    """Every gate a generation batch runs, for each case, in order."""
    verdicts = [check_patent(case.text, finished=case.finished) for case in cases]
    judgements = [
        Judgement(
            reasons=[str(reason) for reason in verdict.reasons],
            score=verdict.score,
            title=verdict.parsed.title if verdict.parsed else "",
            trimmed=verdict.trimmed,
        )
        for verdict in verdicts
    ]
    if not novelty:
        return judgements
    good = [index for index, verdict in enumerate(verdicts) if verdict.accepted and verdict.parsed]
    parsed = [verdicts[index].parsed for index in good]
    vectors = embed_documents([DocumentText(p.title, p.abstract, p.claims) for p in parsed if p])
    for index, document, vector in zip(good, parsed, vectors, strict=True):
        assert document is not None
        result = check_novelty(document, vector, exclude=cases[index].exclude)
        if result.reason:
            judgements[index].reasons.append(result.reason)
    return judgements


def complete_patents() -> list[dict]:
    """The bundled real patents whose claim sets are complete (the sample's part B has claim 1 only)."""
    return [record for record in read_corpus([SAMPLE_CORPUS, EXTRA_CORPUS]) if record.get("claims_complete")]


def _claims(record: dict) -> list[str]:
    return [_CLAIM_NUMBER.sub("", claim) for claim in record["claims"]]


def _numbered(claims: Iterable[str]) -> list[str]:
    return [f"{number}. {claim}" for number, claim in enumerate(claims, start=1)]


def _render(index: int, title: str, abstract: str, claims: Sequence[str]) -> str:
    render = top_down_text if index % 2 == 0 else bottom_up_text
    return render(title, abstract, claims)


def real_cases(records: Sequence[dict], stored: dict[str, int]) -> list[Case]:
    """Each patent in both orders, as the model would write it; novelty against every other stored document."""
    return [
        Case(render(r["title"], r["abstract"], as_numbered_at_grant(r["claims"])), exclude=stored.get(r["id"]))
        for r in records
        for render in (top_down_text, bottom_up_text)
    ]


def as_numbered_at_grant(claims: Sequence[str]) -> list[str]:
    """The claims numbered 1..n, each citation following its claim, as the model numbers them.

    Some records leave out cancelled claims ("7. A system ..." first, or 19 then 23) or number one
    twice; a patent is renumbered this way when it is granted (37 CFR 1.126), and structure-aware
    decoding can only write 1..n. Records already in order, and those with cancelled ranges
    ("1-18. (canceled)"), are left as they are; a citation of a claim the record lacks stays.
    """
    starts = [start for claim in claims if (start := CLAIM_START.match(claim))]
    if len(starts) < len(claims) or any(start[2] for start in starts):
        return list(claims)
    numbers = [int(start[1]) for start in starts]
    if numbers == list(range(1, len(numbers) + 1)):
        return list(claims)
    new_number: dict[int, int] = {}
    for position, number in enumerate(numbers, start=1):
        new_number.setdefault(number, position)

    def cite(match: re.Match[str]) -> str:
        return re.sub(r"\d+", lambda n: str(new_number.get(int(n[0]), n[0])), match[0])

    return [
        f"{position}. " + CITED_CLAIM.sub(cite, claim[start.end() :])
        for position, (claim, start) in enumerate(zip(claims, starts, strict=True), start=1)
    ]


def corrupted_cases(kind: str, records: Sequence[dict], rng: random.Random) -> list[Case]:
    if kind == "weak_generator":
        lines = WEAK_OUTPUTS.read_text(encoding="utf-8").splitlines()
        return [Case(o["text"], o["finished"]) for o in map(json.loads, lines) if o]
    cases = []
    for index, record in enumerate(records):
        title, abstract, claims = record["title"], record["abstract"], _claims(record)
        if kind == "spliced":
            a, b = rng.sample([other for other in records if other is not record], 2)
            cases.append(Case(_render(index, title, a["abstract"], _numbered(_claims(b)))))
        elif kind == "misnumbered":
            cases.append(Case(_render(index, title, abstract, _misnumbered(claims, rng))))
        elif kind == "looped":
            cases.append(Case(_render(index, title, abstract, _numbered([_looped(claims[0], rng), *claims[1:]]))))
        elif kind == "cut_mid_claim":
            cases.append(_cut(index, title, abstract, claims, rng))
        elif kind == "salad":
            shuffled = [_shuffled(claim, rng) for claim in claims]
            cases.append(Case(_render(index, _shuffled(title, rng), _shuffled(abstract, rng), _numbered(shuffled))))
        elif kind == "verbatim_copy":
            cases.append(Case(_render(index, title, abstract, record["claims"])))
        elif kind == "light_rewording":
            reworded = [_REWORDING.sub(lambda m: _REWORDINGS[m[1]], part) for part in (title, abstract, *claims)]
            cases.append(Case(_render(index, reworded[0], reworded[1], _numbered(reworded[2:]))))
        else:
            raise ValueError(f"unknown kind {kind!r}")
    return cases


def _misnumbered(claims: list[str], rng: random.Random) -> list[str]:
    """Claims numbered out of sequence, or (every other time) a claim that cites a later one."""
    numbered = _numbered(claims)
    if len(claims) < 3 or rng.random() < 0.5:
        skipped = rng.randrange(len(claims))
        return [f"{n + (n > skipped)}. {claim}" for n, claim in enumerate(claims, start=1)]
    cited = rng.randrange(1, len(claims) - 1)  # claim cited+1 (1-based) cites claim cited+2
    numbered[cited] = f"{cited + 1}. The invention of claim {cited + 2}, wherein {claims[cited]}"
    return numbered


def _looped(claim: str, rng: random.Random) -> str:
    words = claim.split()
    start = rng.randrange(max(1, len(words) - 8))
    loop = words[start : start + 8]
    return " ".join(words[: start + 8] + loop * 6 + words[start + 8 :])


def _cut(index: int, title: str, abstract: str, claims: list[str], rng: random.Random) -> Case:
    """Stopped by the token limit in the middle of a claim."""
    text = _render(index, title, abstract, _numbered(claims))
    claim = claims[-1] if index % 2 == 0 else claims[0]
    start = text.index(claim)
    words = claim.split()
    keep = rng.randrange(1, max(2, len(words) - 1))
    return Case(text[:start] + " ".join(words[:keep]), finished=False)


def _shuffled(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def bench_gates(*, novelty: bool = True, seed: int = 0) -> dict[str, object]:
    """The figures of bench_gates: real patents accepted, and each corruption's share rejected."""
    records = complete_patents()
    ids = [record["id"] for record in records]
    stored = dict(Patent.objects.filter(source_id__in=ids).values_list("source_id", "id"))
    rng = random.Random(seed)
    real = judge(real_cases(records, stored), novelty=novelty)
    rejections = Counter(reason for judgement in real for reason in judgement.reasons)
    corrupt_rejected, corrupt_trimmed, corrupt_reasons = {}, {}, {}
    for kind in KINDS:
        if not novelty and kind in {"verbatim_copy", "light_rewording"}:
            continue
        judgements = judge(corrupted_cases(kind, records, rng), novelty=novelty)
        # A text cut mid-claim that is published trimmed (its cut claim dropped) did not get its corruption in.
        kept_out = sum(not j.accepted or j.trimmed for j in judgements)
        corrupt_rejected[kind] = round(kept_out / len(judgements), 4)
        corrupt_trimmed[kind] = round(sum(j.accepted and j.trimmed for j in judgements) / len(judgements), 4)
        corrupt_reasons[kind] = dict(Counter(r for j in judgements for r in j.reasons).most_common())
    return {
        "real_documents": len(records),
        "real_cases": len(real),
        "real_accepted": round(sum(j.accepted for j in real) / len(real), 4),
        "real_rejections": dict(rejections.most_common()),
        "corrupt_rejected": corrupt_rejected,
        "corrupt_trimmed": corrupt_trimmed,
        "corrupt_reasons": corrupt_reasons,
        "novelty_checked": novelty,
        "stored_real_documents": len(stored),
    }
