"""Marks that show where a query matched: in the field it names, within the distance it sets.

ts_headline marks every occurrence of a query's words in the text it is given. That is right
for words joined by AND and OR, but not for `valve.ti.` (a valve in the claims did not match) or
`lens ADJ2 mount` (a lone mount did not). For queries with fields, phrases or proximity the
page's documents are matched here, word by word, against the parsed query, with the lexemes
PostgreSQL's english stemmer gives their words (one query per page, ts_lexize). Only the words
of a satisfying match are marked, in the title or in up to two fragments of the abstract and
claims. Positions follow the search columns (search/migrations/0005): words count in order
through title, abstract and claims; a sentence ends at . ! or ? before a capital, a bracket or a
quote; the title, the abstract and each claim are paragraphs.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection

from search import query as query_language
from search.models import Patent
from search.query import And, Node, Not, Or, Phrase, Proximity, Term, Xor

WORD = re.compile(r"[^\W_]+")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"])")
FRAGMENT_WORDS = 28
FRAGMENTS = 2
LEAD_IN = 6  # words shown before a fragment's first mark


@dataclass(frozen=True)
class Word:
    piece: int  # 0 the title, 1 the abstract, 2… the claims in order: each a paragraph
    start: int
    end: int
    text: str  # lower case
    sentence: int

    @property
    def field(self) -> str:
        return "A" if self.piece == 0 else "B" if self.piece == 1 else "C"


class Document:
    """A document's words with their places, and the query's match in them."""

    def __init__(self, patent: Patent, lexemes: dict[str, str | None]) -> None:
        self.pieces = _texts(patent)
        self.lexemes = lexemes
        self.words: list[Word] = []
        sentence = 0
        for piece, text in enumerate(self.pieces):
            breaks = [0] + [match.end() for match in SENTENCE_BREAK.finditer(text)]
            for match in WORD.finditer(text):
                within = bisect.bisect_right(breaks, match.start()) - 1
                self.words.append(Word(piece, match.start(), match.end(), match.group().lower(), sentence + within))
            sentence += len(breaks)

    def is_term(self, index: int, term: Term) -> bool:
        word = self.words[index]
        if term.weights and word.field not in term.weights:
            return False
        if term.is_truncated:
            return _truncation(term.text).match(word.text) is not None
        wanted = self.lexemes.get(term.text.lower())
        return wanted is not None and self.lexemes.get(word.text) == wanted

    def match(self, node: Node) -> set[int] | None:
        """The positions of the words that make the node match, or None where it does not."""
        if isinstance(node, Term):
            return {index for index in range(len(self.words)) if self.is_term(index, node)} or None
        if isinstance(node, Phrase):
            return self._phrase(node)
        if isinstance(node, And):
            found: set[int] = set()
            for operand in node.operands:
                part = self.match(operand)
                if part is None:
                    return None
                found |= part
            return found
        if isinstance(node, Or):
            parts = [part for operand in node.operands if (part := self.match(operand)) is not None]
            return set().union(*parts) if parts else None
        if isinstance(node, Not):
            return set() if self.match(node.operand) is None else None
        if isinstance(node, Xor):
            left, right = self.match(node.left), self.match(node.right)
            return (left if right is None else right) if (left is None) != (right is None) else None
        return self._proximity(node)

    def _phrase(self, phrase: Phrase) -> set[int] | None:
        terms = [Term(word.text, word.weights or phrase.weights) for word in phrase.words]
        found: set[int] = set()
        for start in range(len(self.words) - len(terms) + 1):
            # A stop word in a phrase holds its place but matches any word (as to_tsquery has it).
            if all(
                (self.lexemes.get(term.text.lower()) is None and not term.is_truncated) or self.is_term(start + k, term)
                for k, term in enumerate(terms)
            ):
                found.update(range(start, start + len(terms)))
        return found or None

    def _proximity(self, node: Proximity) -> set[int] | None:
        left, right = self.match(node.left), self.match(node.right)
        if left is None or (right is None and not node.negated):
            return None
        right = right or set()
        if node.negated:  # lens NOT WITH mount: the lens words with no mount near them
            return {i for i in left if not any(self._near(i, j, node) for j in right)} or None
        marked = {i for i in left for j in right if self._near(i, j, node)}
        marked |= {j for j in right for i in left if self._near(i, j, node)}
        return marked or None

    def _near(self, i: int, j: int, node: Proximity) -> bool:
        if node.unit == "word":
            distance = j - i if node.ordered else abs(j - i)
            return 1 <= distance <= node.distance
        a, b = self.words[i], self.words[j]
        apart = abs(a.sentence - b.sentence) if node.unit == "sentence" else abs(a.piece - b.piece)
        return apart <= node.distance - 1

    def title_html(self, marked: set[int]) -> str:
        return _marked_html(self.pieces[0], [w for i, w in enumerate(self.words) if i in marked and w.piece == 0])

    def snippet_html(self, marked: set[int]) -> str:
        """Up to two fragments of the abstract and claims around the marked words; "" when none is there."""
        positions = sorted(i for i in marked if self.words[i].piece > 0)
        fragments, covered = [], -1
        for position in positions:
            if position <= covered or len(fragments) == FRAGMENTS:
                continue
            piece = self.words[position].piece
            same = [i for i, word in enumerate(self.words) if word.piece == piece]
            first = max(same[0], position - LEAD_IN)
            last = min(same[-1], first + FRAGMENT_WORDS - 1)
            covered = last
            words = self.words[first : last + 1]
            text = self.pieces[piece]
            # A fragment that reaches its piece's first or last word shows the piece's start or end whole.
            start = 0 if first == same[0] else words[0].start
            end = len(text) if last == same[-1] else words[-1].end
            inner = _marked_html(
                text[start:end], [_shifted(w, start) for i, w in enumerate(words, first) if i in marked]
            )
            fragments.append(("… " if start > 0 else "") + inner + (" …" if end < len(text.rstrip()) else ""))
        return " ".join(fragments)


def _shifted(word: Word, offset: int) -> Word:
    return Word(word.piece, word.start - offset, word.end - offset, word.text, word.sentence)


def _marked_html(text: str, marks: Sequence[Word]) -> str:
    parts, end = [], 0
    for word in marks:
        parts += [html.escape(text[end : word.start]), f"<mark>{html.escape(text[word.start : word.end])}</mark>"]
        end = word.end
    parts.append(html.escape(text[end:]))
    return " ".join("".join(parts).split())


def _truncation(word: str) -> re.Pattern[str]:
    # The database's POSIX class, in Python's terms.
    return re.compile(query_language.truncation_pattern(word.lower()).replace("[[:alnum:]]", r"[^\W_]"))


def _terms(node: Node) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Phrase):
        yield from node.words
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from _terms(operand)
    elif isinstance(node, Not):
        yield from _terms(node.operand)
    else:
        yield from _terms(node.left)
        yield from _terms(node.right)


def lexemes_of(words: Iterable[str]) -> dict[str, str | None]:
    """Each word's english-stem lexeme as the search vectors hold it; None for a stop word."""
    distinct = sorted(set(words))
    if not distinct:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT word, (ts_lexize('english_stem', word))[1] FROM unnest(%s::text[]) AS word", [distinct])
        return dict(cursor.fetchall())


def mark(patents: Sequence[Patent], tree: Node) -> dict[int, tuple[str, str]]:
    """(title HTML, snippet HTML) of each document, with only the words of the query's match marked."""
    words = {match.group().lower() for patent in patents for text in _texts(patent) for match in WORD.finditer(text)}
    words |= {term.text.lower() for term in _terms(tree) if not term.is_truncated}
    lexemes = lexemes_of(words)
    marked = {}
    for patent in patents:
        document = Document(patent, lexemes)
        positions = document.match(tree) or set()
        marked[patent.pk] = (document.title_html(positions), document.snippet_html(positions))
    return marked


def _texts(patent: Patent) -> list[str]:
    return [patent.title, patent.abstract, *(claim["text"] for claim in patent.claims)]
