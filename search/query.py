"""The examiners' query language: parsed into a tree, compiled to PostgreSQL tsquery.

Examiners paste queries written for USPTO Patent Public Search; the public
types plain words. Both go in the same box (the syntax page,
templates/search/syntax.html, shows every form with an example):

    battery AND (charg$ OR recharg$)        boolean operators AND OR NOT XOR, parentheses
    "light emitting diode"  light-emitting  phrases; a hyphenated word is a phrase
    inflat$  inflat$2  wom?n                truncation: any ending, up to 2 more characters, one character
    lens ADJ3 mount    lens NEAR2 mount     within n words, in order / in either order
    lens WITH mount    lens SAME2 mount     in the same sentence / within 2 paragraphs (claims are paragraphs)
    lens NOT WITH mount                     lens, but never in one sentence with mount (also NOT ADJ/NEAR/SAME)
    ti:battery  (battery).ti.  clm:(a OR b) field qualifiers: ti, ab, clm (also .ti,ab.)
    cordless drill -hammer  cup or mug      plain words: all must occur; -word excludes; "or" joins

Operators are written in capitals (AND, ADJ2, ...), except `or`, which plain
queries use too. The default operator between bare words is AND, as in web
search engines (Patent Public Search defaults to OR: write OR explicitly).
Precedence, tightest first: proximity operators (left to right), NOT, AND,
XOR, OR.

Word proximity (ADJ, NEAR) and phrases compile to tsquery phrase operators on
the main search vector, which its GIN index answers. WITH and SAME compile
against vectors whose positions count sentences or paragraphs (migration
0005): `a <0> b` there means "in the same sentence". Those vectors are not
indexed; the relaxed query (WITH read as AND) finds the candidates and the
exact condition re-checks them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

MAX_QUERY_LENGTH = 4_000
MAX_WORD_DISTANCE = 99
MAX_UNIT_DISTANCE = 25  # Patent Public Search's limit for SAMEn
MAX_EXPANSIONS = 300
# Bounds on a query's shape, so its cost (and the parser's and compiler's recursion) stays predictable:
# real searches nest a few levels and name tens of terms.
MAX_NESTING = 32
MAX_TERMS = 256
MIN_TRUNCATION_STEM = 2

Unit = Literal["word", "sentence", "paragraph"]

FIELD_WEIGHTS = {
    "ti": "A",
    "title": "A",
    "ab": "B",
    "abstract": "B",
    "clm": "C",
    "cl": "C",
    "claims": "C",
}
PROXIMITY = {"ADJ": ("word", True), "NEAR": ("word", False), "WITH": ("sentence", False), "SAME": ("paragraph", False)}
UNIT_COLUMNS = {"word": "search_vector", "sentence": "sentence_vector", "paragraph": "paragraph_vector"}


class QuerySyntaxError(ValueError):
    """A query we can't run, with a message for the person who typed it."""

    def __init__(self, message: str, position: int | None = None) -> None:
        if position is not None:
            message = f"{message} (at character {position + 1})"
        super().__init__(message)


# --- The tree ---------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One word, possibly with truncation: `inflat$`, `inflat$2`, `wom?n`."""

    text: str
    weights: str = ""

    @property
    def is_truncated(self) -> bool:
        return "$" in self.text or "?" in self.text


@dataclass(frozen=True)
class Phrase:
    words: tuple[Term, ...]
    weights: str = ""


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Xor:
    left: Node
    right: Node


@dataclass(frozen=True)
class Proximity:
    left: Node
    right: Node
    unit: Unit
    distance: int
    ordered: bool = False
    negated: bool = False


Node = Term | Phrase | Not | And | Or | Xor | Proximity


# --- Tokens -----------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<quote>")
  | (?P<open>\()
  | (?P<close>\))
  | (?P<field>(?:ti|title|ab|abstract|clm|cl|claims)):(?=\S)
  | (?P<suffix>\.(?:ti|ab|clm)(?:,(?:ti|ab|clm))*\.)
  | (?P<minus>-)(?=[\w"(])
  | (?P<word>\d+(?:\.\d+)+|[^\W_][\w$?]*(?:[-'][^\W_][\w$?]*)*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_OPERATOR = re.compile(r"^(?:AND|OR|NOT|XOR|(ADJ|NEAR|WITH|SAME)(\d*))$")
_LOWERCASE_OPERATORS = re.compile(r"^(?:or|xor|adj\d*)$")
_TRUNCATION = re.compile(r"\$(\d*)|\?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Token:
    kind: str  # word, phrase, op, prox, open, close, field, suffix, minus, end
    text: str
    position: int
    distance: int = 0
    keyword: str = ""  # ADJ, NEAR, WITH or SAME for a proximity operator


@functools.lru_cache(maxsize=512)
def _tokens(query: str) -> tuple[Token, ...]:
    """The query's tokens, read once however many times a request asks (mode choice, parse, highlighting)."""
    return tuple(_read_tokens(query))


def _read_tokens(query: str) -> Iterator[Token]:
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        assert match is not None  # `other` matches any character
        kind = match.lastgroup or "other"
        text = match.group()
        if kind == "quote":
            end = query.find('"', position + 1)
            if end < 0:
                raise QuerySyntaxError('Unclosed quotation mark: a phrase needs a closing "', position)
            yield Token("phrase", query[position + 1 : end], position)
            position = end + 1
            continue
        if kind == "word":
            yield _word_token(text, position)
        elif kind == "field":
            yield Token("field", FIELD_WEIGHTS[match.group("field").lower()], position)
        elif kind == "suffix":
            weights = "".join(sorted({FIELD_WEIGHTS[name.lower()] for name in text.strip(".").split(",")}))
            yield Token("suffix", weights, position)
        elif kind in ("open", "close", "minus"):
            yield Token(kind, text, position)
        # Spaces and other punctuation (commas, semicolons, ...) only separate words.
        position = match.end()
    yield Token("end", "", len(query))


def _word_token(text: str, position: int) -> Token:
    operator = text if _OPERATOR.match(text) else text.upper() if _LOWERCASE_OPERATORS.match(text) else None
    if operator is None:
        return Token("word", text, position)
    match = _OPERATOR.match(operator)
    assert match is not None
    if match[1] is None:
        return Token("op", operator, position, keyword=text if text != operator else "")
    unit, _ordered = PROXIMITY[match[1]]
    distance = int(match[2]) if match[2] else 1
    limit = MAX_WORD_DISTANCE if unit == "word" else MAX_UNIT_DISTANCE
    if not 1 <= distance <= limit:
        raise QuerySyntaxError(f"{operator}: the distance must be between 1 and {limit}", position)
    return Token("prox", operator, position, distance, keyword=match[1])


# --- Parser -----------------------------------------------------------------


class _Parser:
    def __init__(self, query: str, default_operator: str) -> None:
        self.tokens = _with_default_operator(list(_tokens(query)), default_operator)
        self.index = 0
        self.depth = 0
        terms = [token for token in self.tokens if token.kind in ("word", "phrase")]
        if len(terms) > MAX_TERMS:
            raise QuerySyntaxError(
                f"The query has {len(terms):,} terms; the limit is {MAX_TERMS}. Split it into several searches.",
                terms[MAX_TERMS].position,
            )

    def deeper(self, token: Token) -> None:
        """One more level of nesting (a parenthesis, a NOT, a field, an XOR), within MAX_NESTING."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise QuerySyntaxError(f"The query nests more than {MAX_NESTING} levels deep", token.position)

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.token.kind == kind and (text is None or self.token.text == text)

    def parse(self) -> Node:
        if self.at("end"):
            raise QuerySyntaxError("The query is empty")
        node = self.or_expression()
        if self.at("close"):
            raise QuerySyntaxError("Unbalanced parentheses: this ')' has no matching '('", self.token.position)
        if not self.at("end"):  # pragma: no cover - every other token starts an operand
            raise QuerySyntaxError(f"Unexpected '{self.token.text}'", self.token.position)
        return node

    def or_expression(self) -> Node:
        operands = [self.xor_expression()]
        while self.at("op", "OR"):
            self.operator_operand()
            operands.append(self.xor_expression())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def xor_expression(self) -> Node:
        node, depth = self.and_expression(), self.depth
        while self.at("op", "XOR"):
            self.deeper(self.token)  # each XOR nests the ones before it
            self.operator_operand()
            node = Xor(node, self.and_expression())
        self.depth = depth
        return node

    def and_expression(self) -> Node:
        operands = [self.not_expression()]
        while self.at("op", "AND"):
            self.operator_operand()
            operands.append(self.not_expression())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expression(self) -> Node:
        node, depth = self.proximity_expression(), self.depth
        while self.at("op", "NOT"):
            self.deeper(self.token)  # each NOT nests the ones before it
            negation = self.take()
            if self.at("prox"):  # lens NOT WITH mount
                operator = self.take()
                self.expect_operand(operator)
                node = self.proximity(node, operator, self.unary(), negated=True)
            else:
                self.expect_operand(negation)
                node = And((node, Not(self.proximity_expression())))
        self.depth = depth
        return node

    def proximity_expression(self) -> Node:
        node, depth = self.unary(), self.depth
        while self.at("prox"):
            self.deeper(self.token)  # each proximity operator nests the ones before it
            operator = self.take()
            self.expect_operand(operator)
            node = self.proximity(node, operator, self.unary(), negated=False)
        self.depth = depth
        return node

    def proximity(self, left: Node, operator: Token, right: Node, *, negated: bool) -> Proximity:
        unit, ordered = PROXIMITY[operator.keyword]
        for operand in (left, right):
            _check_proximity_operand(operand, unit, operator)
        return Proximity(left, right, unit, operator.distance, ordered=ordered, negated=negated)

    def unary(self) -> Node:
        token = self.token
        if self.at("op", "NOT") or self.at("minus"):
            self.take()
            self.expect_operand(token)
            self.deeper(token)
            node = Not(self.unary())
            self.depth -= 1
            return node
        if self.at("field"):
            self.take()
            self.expect_operand(token)
            self.deeper(token)
            node = _with_weights(self.unary(), token.text)
            self.depth -= 1
            return node
        node = self.primary()
        while self.at("suffix"):
            node = _with_weights(node, self.take().text)
        return node

    def primary(self) -> Node:
        token = self.token
        if token.kind == "open":
            self.take()
            if self.at("close"):
                raise QuerySyntaxError("Empty parentheses", token.position)
            self.deeper(token)
            node = self.or_expression()
            if not self.at("close"):
                raise QuerySyntaxError("Unbalanced parentheses: this '(' is never closed", token.position)
            self.take()
            self.depth -= 1
            return node
        if token.kind == "phrase":
            self.take()
            words = _phrase_words(token.text)
            if not words:
                raise QuerySyntaxError("Empty phrase", token.position)
            return words[0] if len(words) == 1 else Phrase(words)
        if token.kind == "word":
            self.take()
            words = _phrase_words(token.text)  # light-emitting -> "light emitting"
            for word in words:
                _check_truncation(word.text, token.position)
            return words[0] if len(words) == 1 else Phrase(words)
        if token.kind == "end":
            raise QuerySyntaxError("The query ends with an operator that needs a term after it", token.position)
        if token.kind == "close":
            raise QuerySyntaxError("Unbalanced parentheses: this ')' has no matching '('", token.position)
        raise QuerySyntaxError(f"{token.text} needs a term before it", token.position)

    def operator_operand(self) -> None:
        operator = self.take()
        self.expect_operand(operator)

    def expect_operand(self, operator: Token) -> None:
        if self.at("end") or self.at("close") or (self.token.kind in ("op", "prox") and not self.at("op", "NOT")):
            label = {"minus": "-", "field": "The field qualifier"}.get(operator.kind, operator.text)
            raise QuerySyntaxError(f"{label} needs a term after it", operator.position)


_ENDS_OPERAND = ("word", "phrase", "close", "suffix")
_STARTS_OPERAND = ("word", "phrase", "open", "field", "minus")


def _with_default_operator(tokens: list[Token], default_operator: str) -> list[Token]:
    """Write out the operator between bare operands; `-word` always means AND NOT.

    A lowercase `or` that does not stand between two operands ("cats or")
    is just a word.
    """
    written: list[Token] = []
    for index, token in enumerate(tokens):
        if token.kind == "op" and token.keyword:
            after = tokens[index + 1]
            joins = written and written[-1].kind in _ENDS_OPERAND and after.kind in _STARTS_OPERAND
            if not joins:
                token = Token("word", token.keyword, token.position)
        previous = written[-1] if written else None
        ends_operand = previous is not None and previous.kind in _ENDS_OPERAND
        if ends_operand and token.kind in _STARTS_OPERAND:
            operator = "AND" if token.kind == "minus" else default_operator
            written.append(Token("op", operator, token.position))
        written.append(token)
    return written


def _phrase_words(text: str) -> tuple[Term, ...]:
    return tuple(Term(word.lower()) for word in re.findall(r"\d+(?:\.\d+)+|[^\W_][\w$?]*", text))


def _check_truncation(word: str, position: int) -> None:
    stem = _TRUNCATION.split(word)[0]
    if ("$" in word or "?" in word) and len(stem) < MIN_TRUNCATION_STEM and not word.startswith("?"):
        raise QuerySyntaxError(f"{word}: truncation needs at least {MIN_TRUNCATION_STEM} letters before it", position)
    if "$" in word and not re.fullmatch(r"[^$]*\$\d*", word):
        raise QuerySyntaxError(f"{word}: $ truncates the end of a word only", position)


def _check_proximity_operand(node: Node, unit: Unit, operator: Token) -> None:
    """Proximity works on words and phrases (or alternatives of them), as in Patent Public Search."""
    if isinstance(node, Term | Phrase):
        return
    if isinstance(node, Or):
        for operand in node.operands:
            _check_proximity_operand(operand, unit, operator)
        return
    if isinstance(node, Proximity) and node.unit == "word" and not node.negated:
        return
    raise QuerySyntaxError(
        f"{operator.text}: proximity operators join words, phrases, OR-groups or ADJ/NEAR groups, "
        "not AND, NOT or other WITH/SAME groups",
        operator.position,
    )


def _with_weights(node: Node, weights: str) -> Node:
    """Apply a field qualifier to every word inside that has none of its own."""
    if isinstance(node, Term | Phrase):
        return node if node.weights else replace(node, weights=weights)
    if isinstance(node, Not):
        return Not(_with_weights(node.operand, weights))
    if isinstance(node, And | Or):
        return type(node)(tuple(_with_weights(operand, weights) for operand in node.operands))
    if isinstance(node, Xor):
        return Xor(_with_weights(node.left, weights), _with_weights(node.right, weights))
    return replace(node, left=_with_weights(node.left, weights), right=_with_weights(node.right, weights))


# --- Earlier result sets (L-numbers) -------------------------------------------

# L1 … L9999, in capitals, as examiners write them: a reference to an earlier search of the session.
# Quoted ("L5") or in lower case (l5) it is an ordinary word, such as a vertebra.
SET_REFERENCE = re.compile(r"L([1-9]\d{0,3})")


def set_references(query: str) -> list[int]:
    """The set numbers a query refers to, in order of appearance (with repeats)."""
    return [int(match[1]) for token in _tokens(query) if (match := _set_reference(token))]


def _set_reference(token: Token) -> re.Match[str] | None:
    return SET_REFERENCE.fullmatch(token.text) if token.kind == "word" else None


def expand_sets(query: str, sets: Mapping[int, str]) -> str:
    """The query with each L-number replaced by its set's query, in parentheses, to run as one query.

    `sets` holds the earlier searches' queries as they were run (already expanded): the browser
    keeps the history and sends the ones a query names. A reference to a set it did not send is
    an error that names it.
    """
    pieces, end = [], 0
    for token in _tokens(query):
        match = _set_reference(token)
        if match is None:
            continue
        number = int(match[1])
        if number not in sets:
            raise QuerySyntaxError(
                f'L{number} is not a search in this session\'s history; write "L{number}" to search for the word',
                token.position,
            )
        definition = sets[number].strip()
        if not definition or set_references(definition):
            raise QuerySyntaxError(f"The query of L{number} must be sent expanded, without L-numbers", token.position)
        pieces += [query[end : token.position], f"({definition})"]
        end = token.position + len(token.text)
    return "".join(pieces) + query[end:] if pieces else query


def check_query(query: str) -> None:
    """Problems that make a query unusable in any mode: its length and control characters."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"The query is {len(query):,} characters long; the limit is {MAX_QUERY_LENGTH:,}. "
            "To find documents like a long text, use search by text."
        )
    control = _CONTROL.search(query)
    if control:
        character = f"U+{ord(control.group()):04X}"
        raise QuerySyntaxError(f"The query contains a control character ({character})", control.start())


def parse(query: str, *, default_operator: str = "AND") -> Node:
    """The query's tree; QuerySyntaxError names the problem and where it is."""
    check_query(query)
    return _Parser(query, default_operator.upper()).parse()


def uses_examiner_syntax(query: str) -> bool:
    """True for operators, parentheses, truncation or field qualifiers; plain words otherwise."""
    for token in _tokens(query):
        if token.kind in ("op", "prox", "open", "close", "field", "suffix") and token.text != "OR":
            return True
        if token.kind == "word" and ("$" in token.text or "?" in token.text[:-1]):
            return True
    return False


# --- Compilation ------------------------------------------------------------

Expand = Callable[[str], list[str]]


class _Nothing:
    """A truncated word that matches no word of the corpus: its branch is false."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()
Compiled = str | _Nothing | None  # tsquery text, false, or true (no restriction)


@dataclass
class CompiledQuery:
    """What the database runs.

    `tsquery` (text for `to_tsquery('english', ...)`) finds the candidates
    through the GIN index and ranks them. It is exact unless `condition` is
    set: then that SQL re-checks each candidate. `words` is the same query
    without positions or field weights, which the index answers without
    reading any document; every match of `tsquery` matches it.
    `matches_nothing` is set when a truncated word matched no word of the
    corpus and so the query can't.
    """

    tsquery: str
    condition: str = ""
    parameters: list[str] = field(default_factory=list)
    matches_nothing: bool = False
    words: str = ""
    monotone: bool = True  # no exclusions: a match in part of a document is a match of the whole
    # The parsed query, for marking where it matched (search/highlighting.py).
    tree: Node | None = field(default=None, compare=False)

    @property
    def uses_positions(self) -> bool:
        """Whether the tsquery needs word positions or field weights (phrases, ADJ, NEAR, fields)."""
        return self.words != self.tsquery


def compile_query(node: Node, expand: Expand) -> CompiledQuery:
    """Compile a parsed query; `expand` gives the corpus words an anchored regex matches."""
    if not _positive(node):
        raise QuerySyntaxError("A query can't only exclude: add a word to look for")
    compiler = _Compiler(expand)
    candidates = compiler.relaxed(node)
    if candidates is NOTHING:
        return CompiledQuery(tsquery="", matches_nothing=True)
    assert isinstance(candidates, str)
    words = compiler.unpositioned(node)
    if words is NOTHING:
        return CompiledQuery(tsquery="", matches_nothing=True)
    words = words if isinstance(words, str) else candidates
    if not _structural(node):
        return CompiledQuery(tsquery=candidates, words=words, monotone=_monotone(node))
    sql, parameters = compiler.condition(node)
    return CompiledQuery(
        tsquery=candidates, condition=sql, parameters=parameters, words=words, monotone=_monotone(node)
    )


def _positive(node: Node) -> bool:
    """Whether every match must contain some word: a query of only NOTs would scan everything."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_positive(operand) for operand in node.operands)
    if isinstance(node, Or):
        return all(_positive(operand) for operand in node.operands)
    if isinstance(node, Xor):
        return _positive(node.left) and _positive(node.right)
    return True


def _structural(node: Node) -> bool:
    """Whether the node needs the sentence or paragraph vectors (WITH, SAME)."""
    if isinstance(node, Proximity):
        return node.unit != "word"
    if isinstance(node, Not):
        return _structural(node.operand)
    if isinstance(node, And | Or):
        return any(_structural(operand) for operand in node.operands)
    if isinstance(node, Xor):
        return _structural(node.left) or _structural(node.right)
    return False


def _monotone(node: Node) -> bool:
    """Whether the node excludes nothing (no NOT, XOR or NOT ADJ...)."""
    if isinstance(node, Not | Xor):
        return False
    if isinstance(node, Proximity):
        return not node.negated and _monotone(node.left) and _monotone(node.right)
    if isinstance(node, And | Or):
        return all(_monotone(operand) for operand in node.operands)
    return True


def _positionless(node: Node) -> bool:
    """Whether the node's tsquery has no phrase operators and no field weights."""
    if isinstance(node, Term):
        return not node.weights
    if isinstance(node, Phrase):
        return len(node.words) == 1 and not node.weights and _positionless(node.words[0])
    if isinstance(node, Proximity):
        return False
    if isinstance(node, Not):
        return _positionless(node.operand)
    if isinstance(node, And | Or):
        return all(_positionless(operand) for operand in node.operands)
    return _positionless(node.left) and _positionless(node.right)


def _join(parts: list[str], operator: str) -> str:
    return parts[0] if len(parts) == 1 else "(" + f" {operator} ".join(parts) + ")"


def _and(parts: list[Compiled]) -> Compiled:
    if any(part is NOTHING for part in parts):
        return NOTHING
    kept = [part for part in parts if isinstance(part, str)]
    return _join(kept, "&") if kept else None


def _or(parts: list[Compiled]) -> Compiled:
    if any(part is None for part in parts):
        return None
    kept = [part for part in parts if isinstance(part, str)]
    return _join(kept, "|") if kept else NOTHING


def _not(part: Compiled) -> Compiled:
    if part is NOTHING:
        return None
    return NOTHING if part is None else f"!({part})"


class _Compiler:
    def __init__(self, expand: Expand) -> None:
        self.expand = expand
        self.expansions: dict[str, list[str]] = {}

    def exact(self, node: Node, unit: Unit = "word") -> Compiled:
        """tsquery text for the vector whose positions count `unit`s."""
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Phrase):
            parts = [self.term(word, node.weights) for word in node.words]
            if any(part is NOTHING for part in parts):
                return NOTHING
            # In a sentence vector every word of a sentence has the same position.
            return _join([str(part) for part in parts], "<->" if unit == "word" else "<0>")
        if isinstance(node, And):
            return _and([self.exact(operand, unit) for operand in node.operands])
        if isinstance(node, Or):
            return _or([self.exact(operand, unit) for operand in node.operands])
        if isinstance(node, Not):
            return _not(self.exact(node.operand, unit))
        if isinstance(node, Xor):
            left, right = self.exact(node.left, unit), self.exact(node.right, unit)
            return _or([_and([left, _not(right)]), _and([_not(left), right])])
        left, right = self.exact(node.left, unit), self.exact(node.right, unit)
        if left is NOTHING or right is NOTHING:
            near: Compiled = NOTHING
        elif node.unit == "word" and unit != "word":
            near = f"({left} <0> {right})"  # an ADJ group inside a WITH: the same sentence
        else:
            near = _within(str(left), str(right), node)
        return _and([left, _not(near)]) if node.negated else near

    def term(self, term: Term, weights: str = "") -> Compiled:
        suffix = f":{term.weights or weights}" if term.weights or weights else ""
        if not term.is_truncated:
            return f"'{term.text}'{suffix}"
        words = self.expansions.get(term.text)
        if words is None:
            words = self.expansions[term.text] = self.expand(truncation_pattern(term.text))
        if len(words) > MAX_EXPANSIONS:
            raise QuerySyntaxError(
                f"{term.text} matches more than {MAX_EXPANSIONS} different words; make the stem longer"
            )
        return _join([f"'{word}'{suffix}" for word in words], "|") if words else NOTHING

    def relaxed(self, node: Node) -> Compiled:
        """A tsquery every match satisfies (WITH and SAME read as AND); None means no restriction."""
        if not _structural(node):
            return self.exact(node)
        if isinstance(node, Proximity):
            left = self.exact(node.left)
            return left if node.negated else _and([left, self.exact(node.right)])
        if isinstance(node, Not):
            return None
        if isinstance(node, And):
            return _and([self.relaxed(operand) for operand in node.operands])
        operands = node.operands if isinstance(node, Or) else (node.left, node.right)
        return _or([self.relaxed(operand) for operand in operands])

    def unpositioned(self, node: Node) -> Compiled:
        """A tsquery with no positions or weights that every match satisfies (phrases read as AND)."""
        if _positionless(node):
            return self.exact(node)
        if isinstance(node, Phrase):
            return _and([self.term(replace(word, weights="")) for word in node.words])
        if isinstance(node, Term):
            return self.term(replace(node, weights=""))
        if isinstance(node, Proximity):
            left = self.unpositioned(node.left)
            return left if node.negated else _and([left, self.unpositioned(node.right)])
        if isinstance(node, Not):
            return None  # "not in this phrase" rules nothing out by its words alone
        if isinstance(node, And):
            return _and([self.unpositioned(operand) for operand in node.operands])
        operands = node.operands if isinstance(node, Or) else (node.left, node.right)
        return _or([self.unpositioned(operand) for operand in operands])

    def condition(self, node: Node) -> tuple[str, list[str]]:
        """SQL that re-checks a candidate exactly, with its parameters."""
        if not _structural(node):
            return _matches("search_vector", self.exact(node))
        if isinstance(node, Proximity):
            units = _matches(UNIT_COLUMNS[node.unit], self.exact(replace(node, negated=False), node.unit))
            if not node.negated:
                return units
            left = _matches("search_vector", self.exact(node.left))
            return f"({left[0]} AND NOT {units[0]})", left[1] + units[1]
        if isinstance(node, Not):
            sql, parameters = self.condition(node.operand)
            return f"NOT {sql}", parameters
        operands = node.operands if isinstance(node, And | Or) else (node.left, node.right)
        parts = [self.condition(operand) for operand in operands]
        joiner = {And: " AND ", Or: " OR ", Xor: " <> "}[type(node)]
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [p for _, parameters in parts for p in parameters]


def _matches(column: str, compiled: Compiled) -> tuple[str, list[str]]:
    if compiled is NOTHING:
        return "FALSE", []
    if compiled is None:
        return "TRUE", []
    return f"({column} @@ to_tsquery('english', %s))", [str(compiled)]


def _within(left: str, right: str, node: Proximity) -> str:
    """`right` within the distance after `left` (or before it, unless ordered), as phrase operators.

    Words count from 1 (ADJ: the next word); sentences and paragraphs from 0
    (WITH: the same sentence; WITH2: the same or the next one).
    """
    start = 1 if node.unit == "word" else 0
    distances = range(start, start + node.distance)
    alternatives = [f"{left} <{distance}> {right}" for distance in distances]
    if not node.ordered:
        alternatives += [f"{right} <{distance}> {left}" for distance in distances]
    return _join(list(dict.fromkeys(alternatives)), "|")


def truncation_pattern(word: str) -> str:
    """The anchored regular expression of a truncated word: inflat$2 -> ^inflat[[:alnum:]]{0,2}$."""
    parts = []
    position = 0
    for match in _TRUNCATION.finditer(word):
        parts.append(re.escape(word[position : match.start()]))
        if match.group() == "?":
            parts.append("[[:alnum:]]")
        elif match[1]:
            parts.append(f"[[:alnum:]]{{0,{int(match[1])}}}")
        else:
            parts.append("[[:alnum:]]*")
        position = match.end()
    parts.append(re.escape(word[position:]))
    return "^" + "".join(parts) + "$"
