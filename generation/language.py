"""Measures of whether patent text says something: the sense checks behind the gates.

Structure (headings, numbering) is easy for a weak model to get right; these
catch what it gets wrong while looking right: invented words, doubled words,
claim elements with nothing in them, "the X" that was never introduced, and
sections that describe different things. Each is a plain function of the text,
so bench_gates can hold it against real patents and corrupted ones.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# The corpus vocabulary: words of the bundled real patents, which the English word list lacks
# (chemical names, trade terms). Patent-extra is the other bundled real corpus.
VOCABULARY_CORPORA = (DATA_DIR / "patents-sample" / "patents.jsonl", DATA_DIR / "patents-extra" / "patents.jsonl")

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_LOWER_WORD = re.compile(r"\b[a-z]{2,}\b")
_DOUBLED = re.compile(r"\b([a-z]{2,})(?=\s+\1\b(?!-))")
# A claim element with nothing in it: an article or "said" straight before punctuation
# ("comprising: a ."), or a list that opens and closes at once ("comprising: ;").
# An article with nothing after it but punctuation ("comprising: a ."), or a list closed as soon as it opens
# ("comprising: ;"). A space before the mark tells it from a list marker ("comprising: a. a frame").
_EMPTY_ELEMENT = re.compile(r"\b(?:a|an|the|said)(?:\s+[.;:,]|\.$)|[:;]\s*[.;]")
_REFERENCE = re.compile(r"\b(?:the|said)\s+([a-z]{3,})\b", re.IGNORECASE)
# Words after "the" that need no antecedent: claim language, quantities, positions, general nouns.
_NO_ANTECEDENT_NEEDED = frozenset(
    """claim claims method invention same group following step steps first second third fourth fifth sixth other
    present prior art use user users time form order end top bottom side sides front rear back inside outside center
    centre middle surface way number amount plurality range one two three four five presence absence case field
    direction axis length width height thickness diameter area volume weight temperature pressure speed rate level
    position location value values type kind part portion total rest remainder process system apparatus device
    body base art environment world patient subject operator person human horizontal vertical longitudinal lateral
    upper lower inner outer distal proximal left right opposite respective corresponding selected desired
    predetermined particular specific entire whole main primary secondary next last previous final initial single
    art air water ground earth light heat power energy sun""".split()  # noqa: SIM905  # a word list reads best as text
)
# Patent transitions: claim 1 names what it claims (the preamble), then lists it after one of these.
_TRANSITION = re.compile(
    r"\b(?:comprising|comprises|comprise|consisting|consists|including|includes|having|has|wherein|"
    r"characterized|characterised|composed|containing|contains|which|whereby|the steps|by|selected from)\b",
    re.IGNORECASE,
)
_CONTENT_STOP = frozenset(
    """a an the of to and or in on for with by at from as is are be been being wherein said which that this these
    those each first second one least claim claims comprising comprises including includes having has into onto
    upon within between such said its it their there thereof therein further plurality means least more most than
    when where while so not no can may also other any all about over under via per based configured""".split()  # noqa: SIM905
)


@functools.cache
def _corpus_documents() -> tuple[list[str], ...]:
    """The words of each bundled real patent, read once per process (three measures are built from them)."""
    documents = []
    for corpus in VOCABULARY_CORPORA:
        for line in corpus.read_text(encoding="utf-8").splitlines():
            if line:
                record = json.loads(line)
                documents.append(words_of(" ".join([record["title"], record["abstract"], *record["claims"]])))
    return tuple(documents)


def _in_two_documents(items_per_document: Iterable[set]) -> set:
    """What at least two documents have: a word or pair only one patent uses says nothing about a new text
    (and counting it would let every real patent vouch for itself)."""
    seen: set = set()
    repeated: set = set()
    for items in items_per_document:
        repeated |= items & seen
        seen |= items
    return repeated


@functools.cache
def english_words() -> frozenset[str]:
    """pyspellchecker's English dictionary (160,000 words) and the words two bundled real patents share."""
    from spellchecker import SpellChecker

    dictionary = set(SpellChecker(language="en").word_frequency.dictionary)
    return frozenset(dictionary | _in_two_documents(set(words) for words in _corpus_documents()))


# Words this common in the bundled patents are the grammar of claims (articles, prepositions, "wherein",
# "said", "comprising"); the rest are content, which a new invention may well use in pairs no stored
# patent has.
GRAMMAR_WORDS = 300


@functools.cache
def grammar_words() -> frozenset[str]:
    counts = Counter(word for words in _corpus_documents() for word in words)
    return frozenset(word for word, _ in counts.most_common(GRAMMAR_WORDS))


def _grammar_pairs(words: Sequence[str]) -> list[tuple[str, str]]:
    """Adjacent pairs with content words as one class; pairs of two content words tell nothing and go."""
    grammar = grammar_words()
    classes = [word if word in grammar else "<content>" for word in words]
    return [pair for pair in itertools.pairwise(classes) if pair != ("<content>", "<content>")]


@functools.cache
def known_bigrams() -> frozenset[tuple[str, str]]:
    """Grammar-word pairs that two bundled real patents share: the idiom of claims and abstracts."""
    return frozenset(_in_two_documents(set(_grammar_pairs(words)) for words in _corpus_documents()))


def known_bigram_share(text: str) -> float:
    """Share of adjacent grammar-word pairs that real patents also use; low for salad, however real its words."""
    pairs = _grammar_pairs(words_of(text))
    if not pairs:
        return 0.0
    known = known_bigrams()
    return sum(pair in known for pair in pairs) / len(pairs)


def words_of(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def non_word_share(text: str) -> float:
    """Share of words that are in neither the English dictionary nor the corpus vocabulary."""
    words = words_of(text)
    if not words:
        return 1.0
    known = english_words()
    return sum(word not in known for word in words) / len(words)


def doubled_words(text: str) -> int:
    """Times a word follows itself ("a surgical surgical device"); numbers and "that that" aside.

    Only a space between them: "a female-female terminal" and "(canceled) 2. (canceled)" are real text.
    """
    return sum(word not in {"that", "had", "is"} for word in _DOUBLED.findall(text.lower()))


# "a" before a word that starts with a vowel sound ("a electrode"); of the words in u only those whose u is
# not said "you" (a ultrasound, but a unit, a user, a urethra),
# as are words that can follow a letter used as a label ("part a and part b", "a is greater than b").
_A_BEFORE_VOWEL = re.compile(r"\b[aA]\s+([aeio][a-z]{3,}|u(?:l|m|p|n(?!i))[a-z]{2,})\b")  # a ultrasound, not a unit
_NOT_AFTER_A = frozenset(
    "about above after again also among another either even ever into onto only other over".split()  # noqa: SIM905
)
# "an" before a consonant ("an treatment"); lowercase words only, since acronyms take "an" by their sound
# ("an LED", "an RF signal"), as do the words whose h is silent.
_AN_BEFORE_CONSONANT = re.compile(r"\b[aA]n\s+((?!hour|honest|honou?r|heir|herb)[bcdfghjklmnpqrstvwxz][a-z]{2,})\b")
# A thing related to itself: "the user is detected by the user", "a portion of the portion". Only where the
# second one ends its noun phrase: "the fuel from the fuel container" and "a surface of the surface acoustic
# wave element" are real patents' words (the word names a part of something longer), "a first of the
# first configured" is not (a participle is no noun).
_SELF_RELATION = re.compile(
    r"\b(?:the|a|an|said)\s+([a-z]{3,})\s+(?:of|by|to|from|in|with|on)\s+(?:the|a|an|said)\s+\1\b"
    r"(?!-|\s+(?!(?:and|or|is|are|was|be|being|has|have|to|of|in|on|at|by|for|with|from|that|which|wherein|"
    r"when|while|so|as|into|onto|through|such|than|then|thereof|therein)\b)(?![a-z]*(?:ed|ing|ly)\b)[a-z]{2,})",
    re.IGNORECASE,
)


# An ordinal joined to itself: "the second and second arms" (never in 1,408 real patents).
_SAME_ORDINAL = re.compile(r"\b(first|second|third|fourth)\s+(?:and|or)\s+\1\b", re.IGNORECASE)


def grammar_errors(text: str) -> int:
    """Slips a fluent writer doesn't make and a weak generator makes often: "a" before a vowel, "an" before a
    consonant, a thing related to itself, an ordinal joined to itself. Real patents: none in the median
    document."""
    wrong_article = sum(word not in _NOT_AFTER_A for word in _A_BEFORE_VOWEL.findall(text))
    wrong_article += len(_AN_BEFORE_CONSONANT.findall(text))
    return wrong_article + len(_SELF_RELATION.findall(text)) + len(_SAME_ORDINAL.findall(text))


def dominant_word_share(text: str) -> float:
    """The share of a text's content words that are its most frequent one: a weak generator circles one noun
    ("a first base member having a second base member ..."). Real patents: median 0.09, at most 0.28."""
    words = [word for word in _LOWER_WORD.findall(text.lower()) if word not in _CONTENT_STOP and len(word) > 2]
    if len(words) < 20:
        return 0.0
    return Counter(words).most_common(1)[0][1] / len(words)


def has_loop(text: str, *, longest: int = 25, copies: int = 3) -> bool:
    """A run of 1..`longest` words said `copies` times in a row: how a sampler stuck in a loop writes.

    `copies` copies of a span of `size` words are (copies - 1) * size positions in a row where a word
    equals the word `size` after it.
    """
    # Punctuation alone is no word: ". . ." and "0, 1, . . . n" are a real patent's ellipses.
    words = [word for word in text.lower().split() if any(char.isalnum() for char in word)]
    for size in range(1, longest + 1):
        needed, run = (copies - 1) * size, 0
        for first, second in zip(words, words[size:], strict=False):
            run = run + 1 if first == second else 0
            if run >= needed:
                return True
    return False


def empty_elements(text: str) -> int:
    return len(_EMPTY_ELEMENT.findall(text))


CANCELLED = re.compile(r"^\W*(?:canceled|cancelled)\W*$", re.IGNORECASE)


def has_preamble_and_transition(claim: str) -> bool:
    """Claim 1 names its subject before a transition ("A hose reel comprising: ...")."""
    match = _TRANSITION.search(claim)
    return bool(match) and len(words_of(claim[: match.start()])) >= 2 and len(words_of(claim[match.end() :])) >= 3


def unsupported_references(claims: Iterable[str]) -> tuple[int, int]:
    """(references without antecedent, references): "the X" / "said X" whose X no earlier text of the claims has.

    A reference counts as supported when its word appeared anywhere earlier in the claims (claim 1
    first), which is looser than the rule (introduced by "a"/"an" in the same chain) on purpose: real
    claims lean on the preamble and on earlier claims, and only a model that invents nouns fails it often.
    """
    seen: set[str] = set()
    unsupported = total = 0
    for claim in claims:
        position = 0
        for match in _REFERENCE.finditer(claim):
            seen.update(words_of(claim[position : match.start()]))
            position = match.start()
            word = match[1].lower()
            if word in _NO_ANTECEDENT_NEEDED:
                continue
            total += 1
            stem = word.rstrip("s")
            if not any(candidate in seen for candidate in (word, stem, stem + "s", stem + "es")):
                unsupported += 1
        seen.update(words_of(claim))
    return unsupported, total


def content_words(text: str) -> set[str]:
    """Stems (crudely: plural s dropped) of the words that carry meaning."""
    return {word.rstrip("s") for word in words_of(text) if len(word) > 2 and word not in _CONTENT_STOP}


def overlap(part: str, whole: str) -> float:
    """Share of `part`'s content words that `whole` also has: how much the two talk about the same things."""
    words = content_words(part)
    if not words:
        return 0.0
    return len(words & content_words(whole)) / len(words)
