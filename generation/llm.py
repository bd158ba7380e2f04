"""The generator model: loading (hub id or local directory) and sampling through the engine.

A model is loaded once per process (the first batch a worker runs) and kept,
with its engine and preallocated KV cache, for every later batch.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings

from generation.codecs import TextCodec, codec_for
from generation.engine import DecodingParameters, PatentEngine, Request

__all__ = ["DecodingParameters", "Generator", "Request", "Sample", "load_generator", "sample", "storable_text"]

# The offline generator shipped in the repository (data/models/allpatents-minilm/README.md): what `make run`
# generates with when GENERATOR_MODEL is unset and the hub can't be reached.
BUNDLED_GENERATOR = Path(__file__).resolve().parent.parent / "data" / "models" / "allpatents-minilm"

TOP_DOWN_PROMPT = "# Patent\n\n## Title"
BOTTOM_UP_PROMPT = "# Patent\n\n## Claims"


class GeneratorUnavailable(RuntimeError):
    pass


# A model whose config sets this to true is a demonstration generator: its outputs that pass every
# gate are held (recorded, never published). The bundled offline generator sets it: every output of
# it that passed the gates so far was, read, fluent salad (README, "Measured here").
HOLD_ATTRIBUTE = "allpatents_hold_outputs"


@dataclass
class Generator:
    name: str
    revision: str
    model: torch.nn.Module
    codec: TextCodec
    engine: PatentEngine | None = None

    @property
    def holds_outputs(self) -> bool:
        return bool(getattr(self.model.config, HOLD_ATTRIBUTE, False))

    def engine_for(self, max_length: int) -> PatentEngine:
        """The engine, with a KV cache long enough for max_length tokens (made once, grown if needed)."""
        if self.engine is None or self.engine.max_length < max_length:
            self.engine = PatentEngine(
                self.model,
                self.codec,
                slots=settings.GENERATOR_SLOTS,
                max_length=max_length,
                int8=settings.GENERATOR_INT8,
            )
        return self.engine


@dataclass(frozen=True)
class Sample:
    text: str  # prompt + continuation, special tokens removed
    new_tokens: int
    finished: bool  # ended by the model or by a complete last section, not by max_new_tokens
    aborted: str | None = None  # the gate it already failed when decoding stopped it early
    tokens: tuple[int, ...] = ()  # the continuation's token ids, as drawn


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all (our own machines can't reach it)."""
    import socket

    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


@functools.cache
def default_generator() -> str:
    """GENERATOR_MODEL when it is set or the hub answers; otherwise the bundled offline generator."""
    if "GENERATOR_MODEL" in os.environ or hub_reachable():
        return settings.GENERATOR_MODEL
    return str(BUNDLED_GENERATOR)


def _revision(name: str, model: torch.nn.Module) -> str:
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return str(commit)
    weights = sorted(Path(name).glob("*.safetensors")) if Path(name).is_dir() else []
    if weights:
        # A local directory has no commit: identify it by its weights.
        digest = hashlib.sha256()
        for path in weights:
            digest.update(path.read_bytes())
        return "sha256:" + digest.hexdigest()[:16]
    return ""


@functools.cache
def load_generator(name: str) -> Generator:
    """Load once per process: a hub id (needs internet) or a local model directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    except Exception as error:
        raise GeneratorUnavailable(
            f"Could not load the generator model {name!r} ({type(error).__name__}: {error}). "
            "Set GENERATOR_MODEL to a Hugging Face hub id or a local model directory; "
            f"the bundled offline generator is {BUNDLED_GENERATOR}."
        ) from error
    model.eval()
    return Generator(name=name, revision=_revision(name, model), model=model, codec=codec_for(model, tokenizer))


def sample(generator: Generator, requests: list[Request], parameters: DecodingParameters) -> list[Sample]:
    """One sampled continuation per request, in request order; each reproducible from its request's seed."""
    longest_prompt = max(len(generator.codec.encode_prompt(r.prompt)) for r in requests)
    engine = generator.engine_for(longest_prompt + parameters.max_new_tokens)
    completions = sorted(engine.generate(requests, parameters), key=lambda completion: completion.index)
    return [
        Sample(
            storable_text(c.text),
            new_tokens=int(c.new_tokens),
            finished=bool(c.finished),
            aborted=c.aborted,
            tokens=c.tokens,
        )
        for c in completions
    ]


def storable_text(text: str) -> str:
    """A model can emit the byte 0x00, which PostgreSQL text can't store: keep it visible as U+FFFD."""
    return text.replace("\x00", "\ufffd")
