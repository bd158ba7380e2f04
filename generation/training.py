"""Training the project's own small generator on the bundled real patents.

Our machines can't reach the model hub, so the offline default generator is a
small GPT-NeoX with the kl3m-001-32k tokenizer, trained here on every bundled
real patent in exactly the two formats of the kl3m-002-170m-patent model card:
each document top-down (title, abstract, claims) and bottom-up (claims,
abstract, title).

Every example is a whole document, from its first heading to the end token, so
the model learns where a patent ends. A document longer than the context is cut
at a claim boundary: its last claims go, never the middle of one, nor a
section. Documents are packed whole into rows of `block_size` tokens.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from generation.codecs import (
    HEADING_TOKENS,
    LINE_TOKEN,
    MARKUP_ATTRIBUTE,
    SECTION_TOKENS,
    SectionTokenCodec,
    TextCodec,
    TokenizerCodec,
)
from search.importing import SAMPLE_CORPUS

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# The kl3m-001-32k tokenizer (CC BY 4.0, ALEA Institute), bundled: the hub is out of our reach.
KL3M_TOKENIZER = DATA_DIR / "models" / "kl3m-001-32k"
# 162 more real US patents with complete claims (see data/patents-extra/README.md).
EXTRA_CORPUS = DATA_DIR / "patents-extra" / "patents.jsonl"
TRAINING_CORPORA = (SAMPLE_CORPUS, EXTRA_CORPUS)
# One document in twenty is held out: the loss on them is the figure models are compared by.
HELD_OUT_EVERY = 20


def top_down_text(title: str, abstract: str, claims: Sequence[str]) -> str:
    return f"# Patent\n\n## Title\n{title}\n\n## Abstract\n{abstract}\n\n## Claims\n" + "\n".join(claims) + "\n"


def bottom_up_text(title: str, abstract: str, claims: Sequence[str]) -> str:
    return "# Patent\n\n## Claims\n" + "\n".join(claims) + f"\n\n## Abstract\n{abstract}\n\n## Title\n{title}\n"


RENDERINGS = (top_down_text, bottom_up_text)


def read_corpus(corpora: Iterable[Path]) -> list[dict]:
    return [json.loads(line) for corpus in corpora for line in corpus.read_text(encoding="utf-8").splitlines() if line]


def is_held_out(record: dict) -> bool:
    """A stable choice by publication number, the same in every run and on every machine."""
    return int(hashlib.sha256(record["id"].encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0


def training_texts(corpus: Path, *, seed: int = 0) -> list[str]:
    """Every patent of a corpus in both formats, shuffled."""
    texts = [render(r["title"], r["abstract"], r["claims"]) for r in read_corpus([corpus]) for render in RENDERINGS]
    random.Random(seed).shuffle(texts)
    return texts


def fitted_tokens(codec: TextCodec, record: dict, render: Callable[..., str], limit: int) -> list[int] | None:
    """The document's tokens and the end token, with as many whole claims as fit in `limit`; None if not one does."""

    def encode(claims: int) -> list[int]:
        return codec.encode_document(render(record["title"], record["abstract"], record["claims"][:claims]))

    tokens = encode(len(record["claims"]))
    if len(tokens) <= limit:
        return tokens
    if len(encode(1)) > limit:
        return None
    low, high = 1, len(record["claims"]) - 1  # the most claims that fit lie in low..high
    while low < high:
        middle = (low + high + 1) // 2
        if len(encode(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return encode(low)


def tokenized_documents(codec: TextCodec, records: Iterable[dict], limit: int) -> list[list[int]]:
    documents = []
    for record in records:
        for render in RENDERINGS:
            if (tokens := fitted_tokens(codec, record, render, limit)) is not None:
                documents.append(tokens)
    return documents


def pack(
    documents: Sequence[list[int]], block_size: int, rng: random.Random, *, one_per_row: bool = False
) -> list[list[int]]:
    """Whole documents, shuffled, packed greedily into rows of at most block_size tokens.

    A model with absolute positions (the warm-started one) generates every document from position 0,
    so it is trained that way too: one document per row.
    """
    order = list(range(len(documents)))
    rng.shuffle(order)
    if one_per_row:
        return [documents[index] for index in order]
    rows: list[list[int]] = []
    row: list[int] = []
    for index in order:
        document = documents[index]
        if len(row) + len(document) > block_size:
            rows.append(row)
            row = []
        row = row + document
    if row:
        rows.append(row)
    return rows


def batch_tensors(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and labels (padding masked out of the loss) for rows of unequal length."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = torch.tensor(row)
        labels[index, : len(row)] = torch.tensor(row)
    return input_ids, labels


@dataclass(frozen=True)
class TrainingConfig:
    """The defaults reproduce the bundled generator (data/models/allpatents-minilm) given its 85 minutes."""

    # A BERT checkpoint to start from ("minilm": the embedding model all-MiniLM-L6-v2, the one set of
    # pretrained English weights our machines hold); None trains a GPT-NeoX from scratch, of this size:
    warm_start: str | None = "minilm"
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    block_size: int = 512  # MiniLM's learned positions; a GPT-NeoX from scratch was trained with 2,048
    batch_size: int = 8
    learning_rate: float = 3e-4  # a pretrained start; 2e-3 trained the GPT-NeoX from scratch
    minutes: float = 85.0
    max_steps: int | None = None
    seed: int = 0
    # bf16 autocast is 2.3x faster on CPUs with native bf16; on AVX2-only ones (ours: AMD EPYC) it is
    # emulated and many times slower than fp32.
    bf16: bool = False
    evaluate_every: int = 100


@dataclass(frozen=True)
class TrainingResult:
    steps: int
    tokens_seen: int
    first_loss: float
    last_loss: float
    held_out_loss: float  # nats per token
    held_out_loss_per_word: float
    seconds: float
    documents: int
    held_out_documents: int


def build_model(config: TrainingConfig):
    """A small GPT-NeoX of the kl3m-002-170m family's shape (rotary on a quarter of each head), and its tokenizer.

    Input and output embeddings are tied: at this size they are most of the weights, and tying them
    keeps the bundled model under 50 MB.
    """
    from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(KL3M_TOKENIZER)
    model_config = GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=4 * config.hidden_size,
        rotary_pct=0.25,
        max_position_embeddings=max(4096, config.block_size),
        tie_word_embeddings=True,
        use_parallel_residual=True,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    return GPTNeoXForCausalLM(model_config), tokenizer


def warm_started_model(checkpoint: str):
    """A causal decoder with a BERT checkpoint's weights (Rothe et al., 2020), and its tokenizer.

    The encoder's self-attention becomes causal; its word embeddings are tied to the output layer, and
    only the prediction head's transform is new. It reads MiniLM's uncased WordPiece vocabulary, with
    headings and line breaks as reserved tokens (generation/codecs.py).
    """
    from transformers import AutoConfig, AutoTokenizer, BertLMHeadModel

    if checkpoint == "minilm":
        from search.embedding import stock_model_path

        checkpoint = stock_model_path()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.add_special_tokens({"additional_special_tokens": [*HEADING_TOKENS.values(), LINE_TOKEN]})
    model_config = AutoConfig.from_pretrained(checkpoint, is_decoder=True, tie_word_embeddings=True)
    setattr(model_config, MARKUP_ATTRIBUTE, SECTION_TOKENS)
    model_config.bos_token_id, model_config.eos_token_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    # fp32 whatever the checkpoint was saved in: a bundled generator (fp16) can be trained further.
    model = BertLMHeadModel.from_pretrained(checkpoint, config=model_config, dtype=torch.float32)
    return model, tokenizer


@torch.no_grad()
def held_out_loss(model, rows: Sequence[list[int]], pad_id: int, *, bf16: bool, batch_size: int) -> float:
    """Mean loss per token (nats) on the held-out documents."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        input_ids, labels = batch_tensors(rows[start : start + batch_size], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=input_ids).logits.float()
        shifted = labels[:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), shifted.reshape(-1), reduction="sum", ignore_index=-100
        )
        total += float(losses)
        count += int((shifted != -100).sum())
    model.train()
    return total / max(count, 1)


def train_generator(
    output: Path,
    config: TrainingConfig,
    *,
    corpora: Sequence[Path] = TRAINING_CORPORA,
    on_step: Callable[[int, float], None] | None = None,
    on_evaluation: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Train within the time (or step) budget and save a transformers model directory to `output`."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model, tokenizer = build_model(config) if config.warm_start is None else warm_started_model(config.warm_start)
    codec: TextCodec = SectionTokenCodec(tokenizer) if config.warm_start else TokenizerCodec(tokenizer)
    block_size = min(config.block_size, model.config.max_position_embeddings)
    one_per_row = config.warm_start is not None
    records = read_corpus(corpora)
    training = tokenized_documents(codec, [r for r in records if not is_held_out(r)], block_size)
    held_out = tokenized_documents(codec, [r for r in records if is_held_out(r)], block_size)
    if not training:
        raise ValueError(f"No document fits in {block_size} tokens, even with one claim.")
    held_out_rows = pack(held_out, block_size, random.Random(0), one_per_row=one_per_row) if held_out else []
    # Nats per word of the held-out text compare models whose tokenizers cut words differently.
    held_out_words = sum(len(codec.decode(row).split()) for row in held_out_rows)
    held_out_tokens = sum(len(row) - 1 for row in held_out_rows)
    pad_id = tokenizer.pad_token_id

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    budget = config.minutes * 60
    estimated_steps = config.max_steps or 10_000
    started = time.monotonic()
    step, tokens_seen, first_loss, last_loss = 0, 0, math.nan, math.nan
    queue: list[list[int]] = []
    best_held_out = math.inf

    def save(model, steps: int, tokens: int, first: float, last: float, held_out_loss: float) -> None:
        output.mkdir(parents=True, exist_ok=True)
        model.eval()
        # The warm-started model is saved in fp16 (loaded as fp32): it keeps the bundled copy under 50 MB.
        (copy.deepcopy(model).half() if config.warm_start else model).save_pretrained(output)
        tokenizer.save_pretrained(output)
        model.train()
        result = TrainingResult(
            steps=steps,
            tokens_seen=tokens,
            first_loss=first,
            last_loss=last,
            held_out_loss=held_out_loss,
            held_out_loss_per_word=held_out_loss * held_out_tokens / max(held_out_words, 1),
            seconds=time.monotonic() - started,
            documents=len(training),
            held_out_documents=len(held_out),
        )
        (output / "training.json").write_text(
            json.dumps({"config": asdict(config), "result": asdict(result)}, indent=2)
        )
        parameters = sum(p.numel() for p in model.parameters())
        (output / "README.md").write_text(model_card(config, result, parameters), encoding="utf-8")

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

        while len(queue) < config.batch_size:
            queue += pack(training, block_size, rng, one_per_row=one_per_row)  # a new epoch, in a new order
        rows, queue = queue[: config.batch_size], queue[config.batch_size :]
        input_ids, labels = batch_tensors(rows, pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        last_loss = float(loss.detach())
        tokens_seen += sum(len(row) for row in rows)
        if step == 0:
            first_loss = last_loss
            first_step_done = time.monotonic()
        step += 1
        if config.max_steps is None and (step == 1 or step % 10 == 0):
            # Size the schedule to the time budget from the speed so far (evaluations included); the
            # first step, slower than the rest, only until there are others to go by.
            elapsed = time.monotonic() - started
            per_step = elapsed if step == 1 else (time.monotonic() - first_step_done) / (step - 1)
            estimated_steps = max(10, step + int((budget - elapsed) / max(per_step, 1e-3)))
        if on_step:
            on_step(step, last_loss)
        if held_out_rows and step % config.evaluate_every == 0:
            loss_now = held_out_loss(model, held_out_rows, pad_id, bf16=config.bf16, batch_size=4)
            if on_evaluation:
                on_evaluation(step, loss_now)
            if loss_now < best_held_out:
                # Long runs keep their best model on disk: it can be taken whenever the run is stopped.
                best_held_out = loss_now
                save(model, step, tokens_seen, first_loss, last_loss, loss_now)

    final_held_out = (
        held_out_loss(model, held_out_rows, pad_id, bf16=config.bf16, batch_size=4) if held_out_rows else math.nan
    )
    if not final_held_out > best_held_out:  # also true when nothing is held out (nan)
        save(model, step, tokens_seen, first_loss, last_loss, final_held_out)
    return json_result(output)


def json_result(output: Path) -> TrainingResult:
    return TrainingResult(**json.loads((output / "training.json").read_text())["result"])


def model_card(config: TrainingConfig, result: TrainingResult, parameters: int) -> str:
    if config.warm_start:
        minilm = (
            f"all-MiniLM-L6-v2 (sentence-transformers, Apache 2.0; 6 layers, hidden 384, {parameters / 1e6:.1f}M "
            "parameters; its self-attention made causal, its word embeddings tied to a new prediction head)"
        )
        model = (
            f"A BERT decoder warm-started from {minilm} and trained by `manage.py train_generator --warm-start minilm`"
            if config.warm_start == "minilm"
            else f"A BERT decoder (first warm-started from {minilm}) trained further from `{config.warm_start}` by "
            f"`manage.py train_generator --warm-start {config.warm_start}`"
        )
        tokenizer = (
            "Tokenizer: MiniLM's uncased WordPiece vocabulary (from bert-base-uncased, Apache 2.0); section headings "
            "and line breaks are the reserved tokens [unused0]-[unused3] (generation/codecs.py). Saved in fp16."
        )
    else:
        model = (
            f"A GPT-NeoX ({config.layers} layers, hidden {config.hidden_size}, {config.heads} heads, tied "
            f"embeddings, {parameters / 1e6:.1f}M parameters) trained from scratch by `manage.py train_generator`"
        )
        tokenizer = "Tokenizer: kl3m-001-32k, CC BY 4.0, developed by 273 Ventures LLC, donated to the ALEA Institute."
    return (
        "# All the Patents: small offline generator\n\n"
        f"{model} in the format of alea-institute/kl3m-002-170m-patent: every document both top-down and "
        "bottom-up, whole, ending in the end token, in a context of "
        f"{config.block_size} tokens (longer documents cut at a claim boundary).\n\n"
        "## Data\n\n"
        "The bundled real US patents: `data/patents-sample` (1,246 documents; USPTO text, public domain; the A61B "
        "records via PatentsView (USPTO), CC BY 4.0) and `data/patents-extra` (162 documents; USPTO text, public "
        f"domain). One document in {HELD_OUT_EVERY} (by a hash of its publication number) is held out.\n\n"
        f"{tokenizer}\n\n"
        "## Training\n\n"
        f"- {result.documents} training documents, {result.held_out_documents} held out (each order counted)\n"
        f"- {result.steps} steps of {config.batch_size} rows, {result.tokens_seen:,} tokens, learning rate "
        f"{config.learning_rate}, bf16 autocast {'on' if config.bf16 else 'off'}, seed {config.seed}\n"
        f"- training loss {result.first_loss:.3f} -> {result.last_loss:.3f}; "
        f"**held-out loss {result.held_out_loss:.3f} nats/token, {result.held_out_loss_per_word:.3f} nats/word**\n"
        f"- {result.seconds / 60:.1f} minutes on the machine that trained it\n"
    )
