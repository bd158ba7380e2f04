"""Parsing and checking of generated patent text.

The model writes the model card's markdown, top-down (Title, Abstract, Claims)
or bottom-up (Claims, Abstract, Title). Most outputs are junk; these gates
decide which are good enough to publish and count the others by reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from generation import language
from search.documents import Claim


class Rejection(StrEnum):
    MISSING_SECTION = "missing_section"
    EMPTY_SECTION = "empty_section"
    DUPLICATE_SECTION = "duplicate_section"
    OVERLONG_FIELD = "overlong_field"
    CLAIM_NUMBERING = "claim_numbering"
    CLAIM_1_DEPENDENT = "claim_1_dependent"
    BAD_DEPENDENCY = "bad_dependency"
    REPETITION = "repetition"
    NOT_ENGLISH = "not_english"
    TRUNCATED = "truncated"
    # Sense, not structure (generation/language.py): each threshold keeps at least 97% of real
    # patents and was set on bench_gates, where the README gives its figures.
    NON_WORDS = "non_words"
    DOUBLED_WORDS = "doubled_words"
    DISFLUENT = "disfluent"
    CLAIM_1_FORM = "claim_1_form"
    ANTECEDENT_BASIS = "antecedent_basis"
    INCOHERENT = "incoherent"
    UNGRAMMATICAL = "ungrammatical"
    MONOTONOUS = "monotonous"
    ABSTRACT_FORM = "abstract_form"
    # Provenance, for a contributor's upload (generation/likelihood.py): not what the named model samples.
    IMPLAUSIBLE_LIKELIHOOD = "implausible_likelihood"


SECTIONS = ("Title", "Abstract", "Claims")
MAX_TITLE_WORDS = 30
MAX_ABSTRACT_WORDS = 350  # USPTO asks for 150; real abstracts run over (the bundled ones up to 327)
MAX_CLAIM_WORDS = 1_000
MAX_CLAIMS = 200  # the bundled real patents reach 130
# Real patents (408 with complete claims, both orders) against salad, splices and a weak generator:
# Share of a claim's (or the abstract's) word 4-grams that repeat: real lists of parallel elements reach 0.53.
MAX_REPETITION = 0.6
MAX_NON_WORD_SHARE = 0.12  # real: 99th percentile 0.11
MAX_DOUBLED_WORD_RATE = 0.015  # real: 99th percentile 0.012; shuffled words: median 0.024
MIN_KNOWN_BIGRAM_SHARE = 0.89  # grammar-word pairs; real: 1st percentile 0.91, median 0.98; shuffled: 99th 0.875
MAX_UNSUPPORTED_SHARE = 0.35  # of "the X"/"said X" with no earlier X; real: 99th percentile 0.33
MIN_UNSUPPORTED_COUNT = 3  # and at least this many, so one odd reference in a short claim set is no reason
MAX_GRAMMAR_ERROR_RATE = 0.003  # per word, and at least 2; rejects 6 of 1,408 real patents
MAX_DOMINANT_WORD_SHARE = 0.3  # of content words; real: 99th percentile 0.20, highest 0.28
MIN_COHERENCE = 0.25  # content words shared by abstract and claims; real: 1st percentile 0.25, splices at most 0.29

# "## Title" as the model card writes it; "# Title" as its other example prompts. Other sections the
# model writes (its training data has "## Background") are parsed and left out of the document.
_HEADING = re.compile(r"^#{1,2}\s+(?!Patent\s*$)(\w+)\s*$", re.MULTILINE)
# "3. The reel of claim 1 ...", and cancelled ranges as published: "1-18. (canceled)".
CLAIM_START = re.compile(r"^\s*(\d+)(?:\s*[-\u2010-\u2013]\s*(\d+))?\s*\.\s+", re.MULTILINE)
CITED_CLAIM = re.compile(r"\bclaims?\s+(\d+)(?:\s*(?:-|to|through|or|and)\s*(\d+))?", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")
_CLAIM_WORD = re.compile(r"\bclaims?\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?)\]]\s*$")
# Function words and patent boilerplate: frequent in any English claim, rare in junk.
_COMMON_WORDS = frozenset(
    {"a", "an", "the", "of", "to", "and", "or", "in", "on", "for", "with", "by", "at", "from", "as", "is", "are",
     "be", "wherein", "said", "which", "that", "comprising", "each", "first", "second", "one", "least", "claim"}
)  # fmt: skip


@dataclass(frozen=True)
class ParsedPatent:
    title: str
    abstract: str
    claims: list[Claim]


@dataclass
class Verdict:
    reasons: list[Rejection] = field(default_factory=list)
    score: float = 0.0
    parsed: ParsedPatent | None = None
    trimmed: bool = False  # cut by the token limit in its claims: the incomplete last claim was dropped

    @property
    def accepted(self) -> bool:
        return not self.reasons


def split_sections(text: str) -> tuple[dict[str, str], list[Rejection]]:
    """The text under each `## Heading`; problems with the headings themselves."""
    body = text.split("# Patent", 1)[1] if "# Patent" in text else text
    headings = list(_HEADING.finditer(body))
    sections: dict[str, str] = {}
    problems: list[Rejection] = []
    for index, heading in enumerate(headings):
        name = heading[1].capitalize()
        end = headings[index + 1].start() if index + 1 < len(headings) else len(body)
        if name in sections:
            problems.append(Rejection.DUPLICATE_SECTION)
            continue
        sections[name] = body[heading.end() : end].strip()
    return sections, problems


def split_claims(text: str) -> list[Claim]:
    starts = list(CLAIM_START.finditer(text))
    claims: list[Claim] = []
    for index, start in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        claim: Claim = {"number": int(start[1]), "text": " ".join(text[start.end() : end].split())}
        if start[2]:
            claim["through"] = int(start[2])
        claims.append(claim)
    return claims


def cited_claims(text: str) -> set[int]:
    cited: set[int] = set()
    for match in CITED_CLAIM.finditer(text):
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        cited.update(range(first, min(last, first + MAX_CLAIMS) + 1))
    return cited


def repetition_ratio(text: str, n: int = 4) -> float:
    """Share of word 4-grams that repeat an earlier one: ~0.1 for real claims, near 1 for loops."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def english_ratio(text: str) -> float:
    """Share of tokens that are common English function or patent words."""
    words = [word.lower() for word in _WORD.findall(text)]
    if not words:
        return 0.0
    return sum(word in _COMMON_WORDS for word in words) / len(words)


def letter_ratio(text: str) -> float:
    letters = sum(char.isascii() and char.isalpha() for char in text)
    visible = sum(not char.isspace() for char in text)
    return letters / visible if visible else 0.0


def check_claims(claims: list[Claim]) -> list[Rejection]:
    reasons: list[Rejection] = []
    expected = 1
    for claim in claims:
        if claim["number"] != expected or claim.get("through", expected) < expected:
            reasons.append(Rejection.CLAIM_NUMBERING)
            break
        expected = claim.get("through", claim["number"]) + 1
    if expected - 1 > MAX_CLAIMS and Rejection.CLAIM_NUMBERING not in reasons:
        reasons.append(Rejection.CLAIM_NUMBERING)
    # Claim 1 stands alone: it cites no claim, and says "claim" nowhere (no real claim 1 of 1,408 does).
    first = next((claim for claim in claims if not language.CANCELLED.match(claim["text"])), None)
    if first and (cited_claims(first["text"]) or _CLAIM_WORD.search(first["text"])):
        reasons.append(Rejection.CLAIM_1_DEPENDENT)
    numbers = {n for claim in claims for n in range(claim["number"], claim.get("through", claim["number"]) + 1)}
    for claim in claims[1:]:
        cited = cited_claims(claim["text"])
        if any(number >= claim["number"] or number not in numbers for number in cited):
            reasons.append(Rejection.BAD_DEPENDENCY)
            break
    if any(len(claim["text"].split()) > MAX_CLAIM_WORDS for claim in claims):
        reasons.append(Rejection.OVERLONG_FIELD)
    return reasons


def check_patent(text: str, *, finished: bool = True) -> Verdict:
    """Parse generated text (either order) and run every gate; all failing reasons are reported.

    `finished` is False when generation stopped at its token limit rather than
    at the end of the document: the last section may then be cut short.
    """
    sections, reasons = split_sections(text)
    missing = [name for name in SECTIONS if name not in sections]
    if missing:
        reasons.append(Rejection.MISSING_SECTION)
    if any(name in sections and not sections[name] for name in SECTIONS):
        reasons.append(Rejection.EMPTY_SECTION)
    if missing or Rejection.EMPTY_SECTION in reasons:
        return Verdict(reasons=_unique(reasons))

    title = " ".join(sections["Title"].split())
    abstract = " ".join(sections["Abstract"].split())
    claims = split_claims(sections["Claims"])
    if not claims:
        reasons.append(Rejection.EMPTY_SECTION)
        return Verdict(reasons=_unique(reasons))
    # A top-down patent cut by the token limit in its claims keeps the complete ones (at least one):
    # the sampling budget spent on them is not thrown away with the claim it ran out in.
    trimmed = not finished and _claims_last(text) and len(claims) >= 2
    if trimmed:
        claims = claims[:-1]
        finished = True
    parsed = ParsedPatent(title=title, abstract=abstract, claims=claims)

    if len(title.split()) > MAX_TITLE_WORDS or "\n" in sections["Title"].strip():
        reasons.append(Rejection.OVERLONG_FIELD)
    if len(abstract.split()) > MAX_ABSTRACT_WORDS:
        reasons.append(Rejection.OVERLONG_FIELD)
    reasons += check_claims(claims)

    all_text = " ".join([title, abstract, *(claim["text"] for claim in claims)])
    repetition = max(repetition_ratio(abstract), *(repetition_ratio(claim["text"]) for claim in claims))
    if repetition > MAX_REPETITION or language.has_loop(all_text):
        reasons.append(Rejection.REPETITION)
    english = english_ratio(all_text)
    if english < 0.15 or letter_ratio(all_text) < 0.7:
        reasons.append(Rejection.NOT_ENGLISH)
    # A claim is one sentence ending with a period; a cut-off one doesn't.
    if not finished or not claims[-1]["text"].endswith("."):
        reasons.append(Rejection.TRUNCATED)

    reasons += check_sense(parsed)

    score = _score(claims=claims, abstract=abstract, repetition=repetition, english=english)
    return Verdict(reasons=_unique(reasons), score=score, parsed=parsed, trimmed=trimmed)


def _claims_last(text: str) -> bool:
    names = [heading[1].capitalize() for heading in _HEADING.finditer(text)]
    return bool(names) and names[-1] == "Claims"


def check_sense(parsed: ParsedPatent) -> list[Rejection]:
    """The gates a real patent passes and patent-shaped nonsense doesn't (generation/language.py)."""
    claims = [claim["text"] for claim in parsed.claims]
    all_text = " ".join([parsed.title, parsed.abstract, *claims])
    reasons: list[Rejection] = []
    if language.non_word_share(all_text) > MAX_NON_WORD_SHARE:
        reasons.append(Rejection.NON_WORDS)
    if language.doubled_words(all_text) > MAX_DOUBLED_WORD_RATE * len(language.words_of(all_text)):
        reasons.append(Rejection.DOUBLED_WORDS)
    if language.known_bigram_share(all_text) < MIN_KNOWN_BIGRAM_SHARE:
        reasons.append(Rejection.DISFLUENT)
    if language.dominant_word_share(all_text) > MAX_DOMINANT_WORD_SHARE:
        reasons.append(Rejection.MONOTONOUS)
    # An abstract summarises the invention in sentences; it never cites a claim (3 of 1,408 real ones don't
    # end with a full stop: cut in the record).
    if CITED_CLAIM.search(parsed.abstract) or not _SENTENCE_END.search(parsed.abstract):
        reasons.append(Rejection.ABSTRACT_FORM)
    errors = language.grammar_errors(all_text)
    if errors >= 2 and errors > MAX_GRAMMAR_ERROR_RATE * len(language.words_of(all_text)):
        reasons.append(Rejection.UNGRAMMATICAL)
    first = next((claim for claim in claims if not language.CANCELLED.match(claim)), claims[0])
    if not language.has_preamble_and_transition(first) or language.empty_elements(first):
        reasons.append(Rejection.CLAIM_1_FORM)
    unsupported, references = language.unsupported_references(claims)
    if unsupported >= MIN_UNSUPPORTED_COUNT and unsupported > MAX_UNSUPPORTED_SHARE * references:
        reasons.append(Rejection.ANTECEDENT_BASIS)
    coherence = max(
        language.overlap(parsed.abstract, " ".join(claims)),
        language.overlap(claims[0], f"{parsed.abstract} {parsed.title}"),
    )
    if coherence < MIN_COHERENCE:
        reasons.append(Rejection.INCOHERENT)
    return reasons


def _unique(reasons: list[Rejection]) -> list[Rejection]:
    return list(dict.fromkeys(reasons))


def _score(*, claims: list[Claim], abstract: str, repetition: float, english: float) -> float:
    """0..1: more claims (up to 10), a real-sized abstract, little repetition, plain English."""
    claim_part = min(len(claims), 10) / 10
    abstract_part = min(len(abstract.split()), 60) / 60
    return round(
        0.3 * claim_part
        + 0.2 * abstract_part
        + 0.3 * (1 - min(repetition / MAX_REPETITION, 1))
        + 0.2 * min(english / 0.3, 1),
        4,
    )
