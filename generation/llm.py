"""The generator model: loading (hub id or local directory) and sampling.

This is the only module that talks to transformers for generation. Sampling
here is transformers' own `generate`, batched; the faster engine the
generation issue asks for replaces `sample()` behind the same signature.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

TOP_DOWN_PROMPT = "# Patent\n\n## Title"
BOTTOM_UP_PROMPT = "# Patent\n\n## Claims"


class GeneratorUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class DecodingParameters:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    repetition_penalty: float = 1.05
    max_new_tokens: int = 1024

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Generator:
    name: str
    revision: str
    model: torch.nn.Module
    tokenizer: object


@dataclass(frozen=True)
class Sample:
    text: str  # prompt + continuation, special tokens removed
    new_tokens: int
    finished: bool  # ended by the model (end token), not by max_new_tokens


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
            "`python manage.py train_generator` builds a small one under var/models/kl3m-mini."
        ) from error
    model.eval()
    tokenizer.padding_side = "left"
    # Random or lightly trained weights produce float denormals, which slow CPU matmuls several-fold.
    torch.set_flush_denormal(True)
    return Generator(name=name, revision=_revision(name, model), model=model, tokenizer=tokenizer)


def sample(generator: Generator, prompts: list[str], parameters: DecodingParameters, *, seed: int) -> list[Sample]:
    """One sampled continuation per prompt, reproducible for a given seed."""
    tokenizer = generator.tokenizer
    encoded = tokenizer(prompts, return_tensors="pt", padding=True)  # type: ignore[operator]
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = generator.model.generate(  # type: ignore[operator]
            **encoded,
            do_sample=True,
            temperature=parameters.temperature,
            top_p=parameters.top_p,
            top_k=parameters.top_k,
            repetition_penalty=parameters.repetition_penalty,
            max_new_tokens=parameters.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
            eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
        )
    prompt_length = encoded["input_ids"].shape[1]
    samples = []
    for row in output:
        continuation = row[prompt_length:]
        ended = (continuation == tokenizer.eos_token_id).nonzero()  # type: ignore[attr-defined]
        new_tokens = int(ended[0]) + 1 if len(ended) else len(continuation)
        samples.append(
            Sample(
                text=tokenizer.decode(row, skip_special_tokens=True),  # type: ignore[attr-defined]
                new_tokens=new_tokens,
                finished=bool(len(ended)),
            )
        )
    return samples
