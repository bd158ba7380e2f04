"""Patent markdown to a generator's token ids and back.

The kl3m tokenizer writes markdown as it is: headings, newlines and all, so its codec is the tokenizer.
The warm-started generator (generation/training.py) reads with MiniLM's uncased WordPiece vocabulary,
which drops newlines and splits `##` into word pieces; its codec writes each section heading and each
line break as one reserved vocabulary entry (`[unused0]`...`[unused3]`, untrained in MiniLM) and turns
them back into the same markdown, so the gates, the store and every other reader see one format.

A model directory says which codec it needs in its config (`patent_markup`).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

# The config attribute and value that mark a model trained with section tokens.
MARKUP_ATTRIBUTE = "patent_markup"
SECTION_TOKENS = "section-tokens"

HEADING_TOKENS = {"Title": "[unused0]", "Abstract": "[unused1]", "Claims": "[unused2]"}
LINE_TOKEN = "[unused3]"
_HEADING = re.compile(r"\s*#{1,2}[ \t]+(Title|Abstract|Claims)[ \t]*(?:\n|$)", re.IGNORECASE)
# WordPiece decoding puts a space around every punctuation mark; patents don't.
_SPACE_BEFORE = re.compile(r"\s+([.,;:)\]%])")
_SPACE_AFTER = re.compile(r"([(\[])\s+")
_HYPHEN = re.compile(r"(?<=\w) - (?=\w)")
_DECIMAL = re.compile(r"(?<=\d)\. (?=\d)")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|^\d+\.\s+)([a-z])", re.MULTILINE)


class TextCodec(Protocol):
    eos_token_id: int
    vocabulary_size: int
    token_texts: list[str]  # what each token id writes, for the decoder's structure rules
    heading_ids: dict[int, str] | None  # tokens that are whole headings, where the vocabulary has them

    def encode_prompt(self, text: str) -> list[int]: ...

    def encode_document(self, text: str) -> list[int]:
        """A whole training document, from its start token to its end token."""
        ...

    def decode(self, ids: list[int]) -> str: ...

    def decode_fragment(self, ids: list[int]) -> str:
        """Text of a few tokens from inside a document (a claim, a title)."""
        ...

    def continuation_ids(self, text: str) -> list[int]:
        """The tokens that write `text` inside a document: a heading line, a claim number."""
        ...


class TokenizerCodec:
    """Markdown as the tokenizer writes it (the kl3m models)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.vocabulary_size = len(tokenizer)
        self.token_texts = [tokenizer.decode([token]) for token in range(self.vocabulary_size)]
        self.heading_ids = None  # headings are written out: "##", " Abstract", "\n"

    def encode_prompt(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def encode_document(self, text: str) -> list[int]:
        return [*self.encode_prompt(text), self.eos_token_id]

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def decode_fragment(self, ids: list[int]) -> str:
        return self.decode(ids)

    def continuation_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


class SectionTokenCodec:
    """Markdown for an uncased WordPiece model: headings and line breaks as reserved tokens."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos_token_id = tokenizer.cls_token_id
        self.eos_token_id = tokenizer.sep_token_id
        self.vocabulary_size = len(tokenizer)
        self.heading_ids = {tokenizer.convert_tokens_to_ids(token): name for name, token in HEADING_TOKENS.items()}
        self.line_id = tokenizer.convert_tokens_to_ids(LINE_TOKEN)
        self.token_texts = [self._token_text(token) for token in range(self.vocabulary_size)]

    def _token_text(self, token: int) -> str:
        if token in self.heading_ids:
            return f"\n\n## {self.heading_ids[token]}\n"
        if token == self.line_id:
            return "\n"
        piece = str(self.tokenizer.convert_ids_to_tokens(token))
        return piece[2:] if piece.startswith("##") else " " + piece  # a word piece joins the word before it

    def encode_prompt(self, text: str) -> list[int]:
        body = text.split("# Patent", 1)[1] if text.lstrip().startswith("# Patent") else text
        ids = [self.bos_token_id]
        position = 0
        for heading in _HEADING.finditer(body):
            ids += self._encode_lines(body[position : heading.start()])
            ids.append(self.tokenizer.convert_tokens_to_ids(HEADING_TOKENS[heading[1].capitalize()]))
            position = heading.end()
        return ids + self._encode_lines(body[position:])

    def continuation_ids(self, text: str) -> list[int]:
        return self.encode_prompt(text)[1:]

    def decode_fragment(self, ids: list[int]) -> str:
        return self._words([token for token in ids if token not in self.heading_ids and token != self.line_id])

    def _encode_lines(self, text: str) -> list[int]:
        ids: list[int] = []
        for index, line in enumerate(text.strip("\n").split("\n") if text.strip() else []):
            if index:
                ids.append(self.line_id)
            ids += self.tokenizer(line, add_special_tokens=False)["input_ids"]
        return ids

    def encode_document(self, text: str) -> list[int]:
        return [*self.encode_prompt(text), self.eos_token_id]

    def decode(self, ids: list[int]) -> str:
        parts, run = ["# Patent"], []
        for token in ids:
            if token in self.heading_ids or token == self.line_id:
                parts.append(self._words(run))
                parts.append(self.token_texts[token])
                run = []
            elif token not in (self.bos_token_id, self.eos_token_id, self.tokenizer.pad_token_id):
                run.append(token)
        parts.append(self._words(run))
        return "".join(parts)

    def _words(self, ids: list[int]) -> str:
        """Word pieces as patent text, each sentence and claim starting with a capital (the model is uncased)."""
        if not ids:
            return ""
        text = str(self.tokenizer.decode(ids, clean_up_tokenization_spaces=True))
        text = _DECIMAL.sub(".", _HYPHEN.sub("-", _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))))
        return _SENTENCE_START.sub(lambda match: match[1] + match[2].upper(), text)


def codec_for(model: Any, tokenizer: Any) -> TextCodec:
    if getattr(model.config, MARKUP_ATTRIBUTE, None) == SECTION_TOKENS:
        return SectionTokenCodec(tokenizer)
    return TokenizerCodec(tokenizer)
