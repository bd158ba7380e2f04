"""Structure-aware decoding: the model writes the words, the decoder keeps the form.

A weak generator loses most of its outputs to form, not content: a top-down
patent that ends after its abstract, a heading written twice, claims numbered
1, 2, 2, a bottom-up patent that runs out of tokens before its title. The
`Guide` follows each sequence token by token (tokenizer-level state, no
re-decoding) and, between the model's logits and the next token:

- writes every heading itself, in the mode's order and once each: when the
  model starts a heading or ends the document early, the next section's
  heading is written instead;
- forbids the end token until the last section holds a complete claim or line;
- starts every claim with the next number, and lets a dependent claim cite
  only an earlier one;
- moves on to the next section once one has used its share of the token
  budget, at the end of a sentence or claim, so a bottom-up patent keeps
  room for its abstract and title;
- aborts a sequence as soon as a part of it is complete and already fails a
  gate that no later text can undo (claim 1 without a preamble and a
  transition, a looped or overlong claim or field): its slot goes to the next
  prompt at once.

What it changes in the output distribution: within a section the words are the
model's own samples, unchanged; where the model would have written a heading,
a claim number or the end token, the probability of that choice is kept but
the form is fixed (the next heading in order, the next number), and citations
are drawn from the model's distribution over the allowed numbers only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from generation import language
from generation.checking import (
    MAX_ABSTRACT_WORDS,
    MAX_CLAIM_WORDS,
    MAX_REPETITION,
    MAX_TITLE_WORDS,
    Rejection,
    repetition_ratio,
)
from generation.codecs import TextCodec

TOP_DOWN = ("Title", "Abstract", "Claims")
BOTTOM_UP = ("Claims", "Abstract", "Title")
# Where each section must give way to the next, as a share of the token budget counted from the start:
# a bottom-up patent's claims stop by 62% of it, leaving room for an abstract and a title.
SECTION_END = {TOP_DOWN: (0.08, 0.45, 1.0), BOTTOM_UP: (0.62, 0.92, 1.0)}
# Titles are short (real ones: a median of 9 words, the gate's limit 30), and a weak model forgets to end
# them: past this many words, each further word adds this much (nats) to the logits of ending the title.
TITLE_WORDS_UNBIASED = 8
TITLE_END_BIAS_PER_WORD = 0.5
# How far past its share a section may run to finish its sentence or claim.
OVERRUN = 0.05
# A top-down patent ends at a claim boundary when fewer tokens than this are left: a claim begun there
# would be cut by the limit.
CLAIM_RESERVE = 64
_CITATION = re.compile(r"\bclaims?\s*$", re.IGNORECASE)
_CITED_NUMBER = re.compile(r"\bclaims?\s*\d+$", re.IGNORECASE)
_CLAIM_NUMBER = re.compile(r"^\s*\d+\s*\.\s*")
_HEADING_IN_PROMPT = re.compile(r"#{1,2}\s*(Title|Abstract|Claims)\b", re.IGNORECASE)


@dataclass
class SequenceState:
    order: tuple[str, ...]
    section: int  # index into order
    limit: int  # new tokens allowed
    written: int = 0  # new tokens so far
    forced: list[int] = field(default_factory=list)
    heading_left: int = 0  # how many of the forced tokens write a heading (structure, not the section's text)
    line: list[int] = field(default_factory=list)  # tokens since the section's last line break
    line_text: str = ""
    claim: int = 0  # number of the claim being written
    after_claim: bool = False  # a claim just ended with a line break: next comes a number or the section's end
    end_pending: bool = False  # the section has used its budget: the next token starts the next section
    complete: bool = False  # the last section is complete: the sequence ends
    aborted: Rejection | None = None

    @property
    def name(self) -> str:
        return self.order[self.section]

    @property
    def last(self) -> bool:
        return self.section == len(self.order) - 1


class Guide:
    def __init__(self, codec: TextCodec, *, early_abort: bool = True) -> None:
        self.codec = codec
        self.early_abort = early_abort
        self.eos = codec.eos_token_id
        texts = codec.token_texts
        heading_ids = codec.heading_ids
        # A heading begins with "#" or, from a weak model, with the bare section name ("... Abstract\n").
        self.is_heading = torch.tensor(
            [
                (token in heading_ids) if heading_ids is not None else "#" in text or text.strip() in TOP_DOWN
                for token, text in enumerate(texts)
            ]
        )
        self.newlines = [0 if self.is_heading[token] else text.count("\n") for token, text in enumerate(texts)]
        self.has_newline = torch.tensor(self.newlines) > 0
        self.ends_title = self.is_heading | self.has_newline
        self.ends_title[self.eos] = True
        stripped = [text.strip() for text in texts]
        self.numbers = {token: int(text) for token, text in enumerate(stripped) if text.isascii() and text.isdigit()}
        # Digits that would extend the number before them ("1" then "2"): no space in front.
        self.digit_continuations = torch.tensor([token for token, text in enumerate(texts) if text[:1].isdigit()])
        self.number_tokens = torch.tensor(sorted(self.numbers))
        self.number_values = torch.tensor([self.numbers[token] for token in sorted(self.numbers)])
        self.headings = {name: codec.continuation_ids(f"\n\n## {name}\n") for name in TOP_DOWN}
        self._claim_starts: dict[int, list[int]] = {}

    def claim_start(self, number: int) -> list[int]:
        if number not in self._claim_starts:
            self._claim_starts[number] = self.codec.continuation_ids(f"{number}. ")
        return self._claim_starts[number]

    # --- a new sequence --------------------------------------------------------------

    def start(self, prompt: str, prompt_ids: list[int], limit: int) -> SequenceState:
        """State for a prompt ending in (or inside) a section: the rest of its heading line is written first."""
        headings = list(_HEADING_IN_PROMPT.finditer(prompt))
        names = [match[1].capitalize() for match in headings]
        order = BOTTOM_UP if names and names[0] == "Claims" else TOP_DOWN
        state = SequenceState(order=order, section=order.index(names[-1]) if names else 0, limit=limit)
        if headings and not prompt[headings[-1].end() :].strip():
            # The prompt ends with the heading (the model card's prompts): write the rest of its line.
            heading = self.headings[state.name]
            done = next((k for k in range(len(heading), 0, -1) if prompt_ids[-k:] == heading[:k]), 0)
            state.forced = heading[done:]
            state.heading_left = len(state.forced)
            if state.name == "Claims":
                state.forced += self.claim_start(1)
                state.claim = 1
        elif headings:
            state.line_text = prompt[headings[-1].end() :].lstrip("\n")  # a seed title, already begun
        return state

    # --- before each draw ------------------------------------------------------------

    def mask(self, state: SequenceState, logits: torch.Tensor) -> None:
        """Rule out, in place, what this sequence may not write next."""
        if state.forced:
            forced = state.forced[0]
            keep = logits[forced].clone()
            logits.fill_(float("-inf"))
            logits[forced] = keep if torch.isfinite(keep) else 0.0
            return
        if not state.line_text.strip():
            # A section has text before it ends: no heading, line break or end token straight after one.
            logits[self.is_heading | self.has_newline] = float("-inf")
            logits[self.eos] = float("-inf")
        elif state.last and not self._last_section_may_end(state):
            logits[self.eos] = float("-inf")
        if state.name == "Title" and (extra := len(state.line_text.split()) - TITLE_WORDS_UNBIASED) > 0:
            logits[self.ends_title] += TITLE_END_BIAS_PER_WORD * extra
        if state.name == "Claims":
            if _CITATION.search(state.line_text):
                # A dependent claim cites an earlier claim; claim 1 cites none.
                logits[self.number_tokens[self.number_values >= state.claim]] = float("-inf")
            elif _CITED_NUMBER.search(state.line_text):
                logits[self.digit_continuations] = float("-inf")

    def _last_section_may_end(self, state: SequenceState) -> bool:
        if state.name == "Claims":
            return state.after_claim or state.line_text.rstrip().endswith(".")
        return bool(state.line_text.strip())

    # --- after each draw -------------------------------------------------------------

    def advance(self, state: SequenceState, token: int) -> int:
        """The token this sequence writes in place of the drawn one, with the state moved past it."""
        state.written += 1
        if state.forced:
            token = state.forced.pop(0)
            if state.heading_left:
                state.heading_left -= 1
                return token
            return self._write(state, token)
        if state.end_pending:
            return self._end_section(state)
        heading = bool(self.is_heading[token])
        ends_document = token == self.eos
        line_break = self.newlines[token] > 0
        if state.name == "Claims" and state.after_claim:
            state.after_claim = False
            number_next = not (heading or ends_document or line_break)
            if number_next and not self._over_budget(state) and not self._claim_would_be_cut(state):
                state.claim += 1
                return self._begin(state, self.claim_start(state.claim))
            return self._end_section(state)
        if heading or ends_document:
            return self._end_section(state)
        if line_break and state.line_text.strip():
            if state.name == "Claims" and self.newlines[token] == 1:
                self._check_part(state)
                state.after_claim = True
                state.line, state.line_text = [], ""
                return token
            return self._end_section(state)
        token = self._write(state, token)
        if not state.last and self._over_budget(state):
            if state.name == "Title" and self.early_abort and not state.aborted:
                # A title that hasn't ended within its budget is over-long: cut, it would read as a fragment.
                state.aborted = Rejection.OVERLONG_FIELD
            # Otherwise an abstract gives way at the end of a sentence, claims at the end of a claim; any
            # section where the next one's room would start to go.
            soft = state.name == "Title" or (state.name == "Abstract" and state.line_text.rstrip().endswith("."))
            state.end_pending = soft or self._over_budget(state, OVERRUN)
        return token

    def _write(self, state: SequenceState, token: int) -> int:
        state.line.append(token)
        state.line_text += self.codec.token_texts[token]
        if self.early_abort and len(state.line) % 8 == 0 and not state.aborted:
            # A field past its gate's word limit fails whatever follows (counted every few tokens: cheap).
            words = len(state.line_text.split())
            if words > {"Title": MAX_TITLE_WORDS, "Abstract": MAX_ABSTRACT_WORDS}.get(state.name, MAX_CLAIM_WORDS):
                state.aborted = Rejection.OVERLONG_FIELD
        return token

    def _begin(self, state: SequenceState, ids: list[int]) -> int:
        state.forced = ids[1:]
        return self._write(state, ids[0])

    def _end_section(self, state: SequenceState) -> int:
        """The current section is over: the next heading is written (and claim 1's number), or the end token."""
        if state.line_text.strip():
            self._check_part(state)
        state.line, state.line_text, state.after_claim, state.end_pending = [], "", False, False
        if state.last:
            state.complete = True
            return self.eos
        state.section += 1
        ids = self.headings[state.name]
        state.heading_left = len(ids) - 1
        if state.name == "Claims":
            state.claim = 1
            ids = ids + self.claim_start(1)
        state.forced = ids[1:]
        return ids[0]  # a heading's tokens are structure, not the next section's text

    def _over_budget(self, state: SequenceState, overrun: float = 0.0) -> bool:
        return state.written >= (SECTION_END[state.order][state.section] + overrun) * state.limit

    def _claim_would_be_cut(self, state: SequenceState) -> bool:
        return state.last and state.limit - state.written < CLAIM_RESERVE

    # --- early abort -----------------------------------------------------------------

    def _check_part(self, state: SequenceState) -> None:
        """A claim, title or abstract just ended: abort if it already fails a gate no later text can undo."""
        if not self.early_abort or state.aborted:
            return
        text = self.codec.decode_fragment(state.line)
        if state.name == "Claims":
            claim = _CLAIM_NUMBER.sub("", text, count=1)
            if len(claim.split()) > MAX_CLAIM_WORDS:
                state.aborted = Rejection.OVERLONG_FIELD
            elif repetition_ratio(claim) > MAX_REPETITION or language.has_loop(claim):
                state.aborted = Rejection.REPETITION
            elif (
                state.claim == 1
                and not language.CANCELLED.match(claim)
                and (not language.has_preamble_and_transition(claim) or language.empty_elements(claim))
            ):
                state.aborted = Rejection.CLAIM_1_FORM
        elif state.name == "Title" and len(text.split()) > MAX_TITLE_WORDS:
            state.aborted = Rejection.OVERLONG_FIELD
        elif state.name == "Abstract":
            if len(text.split()) > MAX_ABSTRACT_WORDS:
                state.aborted = Rejection.OVERLONG_FIELD
            elif repetition_ratio(text) > MAX_REPETITION or language.has_loop(text):
                state.aborted = Rejection.REPETITION
