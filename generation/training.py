"""Training the project's own small generator on the bundled real patents.

Our machines can't reach the model hub, so the offline default generator is a
small GPT-NeoX with the kl3m-001-32k tokenizer, trained here on the sample
corpus in exactly the two formats of the kl3m-002-170m-patent model card: half
of the examples top-down (title, abstract, claims), half bottom-up (claims,
abstract, title).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from search.importing import SAMPLE_CORPUS

# The kl3m-001-32k tokenizer (CC BY 4.0, ALEA Institute), bundled: the hub is out of our reach.
KL3M_TOKENIZER = Path(__file__).resolve().parent.parent / "data" / "models" / "kl3m-001-32k"


def top_down_text(title: str, abstract: str, claims: list[str]) -> str:
    return f"# Patent\n\n## Title\n{title}\n\n## Abstract\n{abstract}\n\n## Claims\n" + "\n".join(claims) + "\n"


def bottom_up_text(title: str, abstract: str, claims: list[str]) -> str:
    return "# Patent\n\n## Claims\n" + "\n".join(claims) + f"\n\n## Abstract\n{abstract}\n\n## Title\n{title}\n"


def training_texts(corpus: Path, *, seed: int = 0) -> list[str]:
    """Every patent once, alternately in the top-down and the bottom-up format."""
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(records)
    texts = []
    for index, record in enumerate(records):
        render = top_down_text if index % 2 == 0 else bottom_up_text
        texts.append(render(record["title"], record["abstract"], record["claims"]))
    return texts


@dataclass(frozen=True)
class TrainingConfig:
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    block_size: int = 256
    batch_size: int = 8
    learning_rate: float = 1e-3
    minutes: float = 10.0
    max_steps: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class TrainingResult:
    steps: int
    tokens_seen: int
    first_loss: float
    last_loss: float
    seconds: float


def build_model(config: TrainingConfig, vocab_size: int):  # type: ignore[no-untyped-def]
    """A small GPT-NeoX of the kl3m-002-170m family's shape (rotary on a quarter of each head, untied output)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    model_config = GPTNeoXConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=4 * config.hidden_size,
        rotary_pct=0.25,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        use_parallel_residual=True,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    return GPTNeoXForCausalLM(model_config)


def train_generator(
    output: Path,
    config: TrainingConfig,
    *,
    corpus: Path = SAMPLE_CORPUS,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Train within the time (or step) budget and save a transformers model directory to `output`."""
    from transformers import AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(KL3M_TOKENIZER)
    stream: list[int] = []
    for text in training_texts(corpus, seed=config.seed):
        stream += tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    tokens = torch.tensor(stream, dtype=torch.long)

    model = build_model(config, vocab_size=len(tokenizer))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    budget = config.minutes * 60
    estimated_steps = config.max_steps or 10_000
    generator = torch.Generator().manual_seed(config.seed)
    started = time.monotonic()
    step, first_loss, last_loss = 0, math.nan, math.nan
    while True:
        elapsed = time.monotonic() - started
        if (config.max_steps is not None and step >= config.max_steps) or (
            config.max_steps is None and elapsed >= budget
        ):
            break
        # Warm up, then cosine decay over the expected number of steps.
        warmup = min(50, estimated_steps // 10 + 1)
        progress = min(step / estimated_steps, 1.0)
        scale = min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * scale

        starts = torch.randint(0, len(tokens) - config.block_size - 1, (config.batch_size,), generator=generator)
        batch = torch.stack([tokens[start : start + config.block_size] for start in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        last_loss = float(loss.detach())
        if step == 0:
            first_loss = last_loss
            if config.max_steps is None:
                # Size the schedule to the time budget from the first step's speed.
                estimated_steps = max(10, int(budget / max(time.monotonic() - started, 1e-3)))
        step += 1
        if on_step:
            on_step(step, last_loss)

    output.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    result = TrainingResult(
        steps=step,
        tokens_seen=step * config.batch_size * config.block_size,
        first_loss=first_loss,
        last_loss=last_loss,
        seconds=time.monotonic() - started,
    )
    (output / "README.md").write_text(
        "# All the Patents: small offline generator\n\n"
        f"A GPT-NeoX ({config.layers} layers, hidden {config.hidden_size}, {config.heads} heads) trained by "
        "`manage.py train_generator` on the bundled sample of real US patents (public domain; the A61B records "
        "via PatentsView (USPTO), CC BY 4.0), half top-down and half bottom-up, in the format of "
        "alea-institute/kl3m-002-170m-patent.\n\n"
        "Tokenizer: kl3m-001-32k, CC BY 4.0, developed by 273 Ventures LLC, donated to the ALEA Institute.\n\n"
        f"Training: {result.steps} steps, {result.tokens_seen} tokens, loss {result.first_loss:.3f} -> "
        f"{result.last_loss:.3f}, {result.seconds:.0f} s.\n",
        encoding="utf-8",
    )
    return result
