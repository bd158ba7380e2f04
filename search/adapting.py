"""Adapt the embedding model to patent text: contrastive pairs from the bundled real patents.

Stock all-MiniLM-L6-v2 learned from web pairs (questions, titles, captions); it has never been
asked to find a patent from a description of what it does. Every patent holds the same invention
written three ways (a title, an abstract, claims), so pairs of its own parts teach that without
any labelled query: title -> abstract, abstract -> claim 1, the abstract's first sentence -> claim
1, and a dependent claim -> title and abstract. Each pair carries a hard negative, the same part of
the training patent nearest to it by the stock model, besides the batch's other patents: without
it the stock model already tells most in-batch pairs apart and learns little.

Only documents of bench_relevance's tune half (and the extra corpus, which it never queries) are
trained on, so that its held-out half still measures documents the model has not seen.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from search.documents import Claim
from search.importing import ReferencePatent, read_records

TRAINING_CORPORA = ("patents-sample", "patents-extra")
_CITATION = re.compile(r"\bclaims?\s+\d+", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.;])\s+(?=[A-Z])")


@dataclass(frozen=True)
class Pair:
    document: int  # index into the training documents; no batch holds one document twice
    query: str
    positive: str
    negative: str


@dataclass(frozen=True)
class Recipe:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup: float = 0.1  # share of the steps the learning rate climbs over, then it decays linearly to 0
    scale: float = 20.0  # cosine similarities times this are the logits (sentence-transformers' default)
    max_tokens: int = 128
    seed: int = 0


@dataclass(frozen=True)
class AdaptationResult:
    documents: int
    pairs: int
    steps: int
    seconds: float
    first_loss: float
    last_loss: float


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def _independent(claims: Sequence[Claim]) -> Claim | None:
    for claim in claims:
        if "through" not in claim and not _CITATION.search(claim["text"]) and "cancel" not in claim["text"][:20]:
            return claim
    return None


def _dependent(claims: Sequence[Claim]) -> list[Claim]:
    return [claim for claim in claims if _CITATION.search(claim["text"])]


def _fields(document: ReferencePatent, rng: random.Random) -> dict[str, str] | None:
    """The parts of one patent that pairs are made of, or None for one without a usable claim 1."""
    claim_1 = _independent(document.claims)
    if claim_1 is None:
        return None
    dependent = _dependent(document.claims)
    fields = {
        "title": document.title,
        "abstract": document.abstract,
        "sentence": _first_sentence(document.abstract),
        "claim": claim_1["text"],
        "title_abstract": f"{document.title}. {document.abstract}",
    }
    if dependent:
        fields["dependent"] = rng.choice(dependent)["text"]
    return fields


# (query part, positive part): the negative is the positive part of the nearest other patent.
PAIR_KINDS = (("title", "abstract"), ("abstract", "claim"), ("sentence", "claim"), ("dependent", "title_abstract"))


def make_pairs(fields: list[dict[str, str]], neighbours: np.ndarray) -> list[Pair]:
    """Every pair kind of every patent, its hard negative the same part of its nearest other patent.

    Only the query part can be missing (a dependent claim); every patent has every positive part.
    """
    pairs = []
    for index, parts in enumerate(fields):
        for query_part, positive_part in PAIR_KINDS:
            if query_part not in parts:
                continue
            negative = next(int(other) for other in neighbours[index] if other != index)
            pairs.append(Pair(index, parts[query_part], parts[positive_part], fields[negative][positive_part]))
    return pairs


def batches(pairs: list[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches with no document twice (its other pairs would be false negatives)."""
    waiting = pairs[:]
    rng.shuffle(waiting)
    result: list[list[Pair]] = []
    while len(waiting) >= size:
        batch: list[Pair] = []
        seen: set[int] = set()
        rest: list[Pair] = []
        for pair in waiting:
            if len(batch) < size and pair.document not in seen:
                batch.append(pair)
                seen.add(pair.document)
            else:
                rest.append(pair)
        if len(batch) < size:
            break  # what is left comes from too few documents to fill a batch
        result.append(batch)
        waiting = rest
    return result


def contrastive_loss(
    queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, scale: float
) -> torch.Tensor:
    """Symmetric InfoNCE over unit vectors: each query against every positive and hard negative, and back."""
    targets = torch.arange(len(queries))
    forward = scale * queries @ torch.cat([positives, negatives]).T
    backward = scale * positives @ queries.T
    return (F.cross_entropy(forward, targets) + F.cross_entropy(backward, targets)) / 2


def training_documents(data_dir: Path, keep: Callable[[ReferencePatent], bool]) -> list[ReferencePatent]:
    documents = []
    for corpus in TRAINING_CORPORA:
        path = data_dir / corpus / "patents.jsonl"
        documents += [record for _, record in read_records(path) if keep(record)]
    return documents


def adapt(
    base_model: str,
    documents: list[ReferencePatent],
    output: Path,
    recipe: Recipe = Recipe(),
    on_step: Callable[[int, int, float], None] | None = None,
) -> AdaptationResult:
    """Fine-tune base_model on pairs from documents and save it to output (fp16 safetensors)."""
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    model = SentenceTransformer(base_model, device="cpu")
    fields = [parts for document in documents if (parts := _fields(document, rng))]

    # Hard negatives: the nearest other patent by the model before training, on title and abstract.
    with torch.inference_mode():
        before = model.encode([parts["title_abstract"] for parts in fields], normalize_embeddings=True, batch_size=64)
    neighbours = np.argsort(-(before @ before.T), axis=1)[:, :2]
    pairs = make_pairs(fields, neighbours)
    plan = [batch for _ in range(recipe.epochs) for batch in batches(pairs, recipe.batch_size, rng)]
    if not plan:
        raise ValueError(f"{len(fields)} documents are too few for one batch of {recipe.batch_size} different ones")

    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    warmup = max(1, int(recipe.warmup * len(plan)))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(plan) - step) / max(1, len(plan) - warmup)))
    )

    def encode(texts: list[str]) -> torch.Tensor:
        features = model.tokenizer(
            texts, padding=True, truncation=True, max_length=recipe.max_tokens, return_tensors="pt"
        )
        return F.normalize(model(dict(features))["sentence_embedding"], dim=-1)

    model.train()
    started = time.monotonic()
    losses: list[float] = []
    for step, batch in enumerate(plan, start=1):
        loss = contrastive_loss(
            encode([pair.query for pair in batch]),
            encode([pair.positive for pair in batch]),
            encode([pair.negative for pair in batch]),
            recipe.scale,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, len(plan), losses[-1])
    seconds = time.monotonic() - started

    model.eval()
    model.half()  # 45 MB instead of 90; load_model casts it back to fp32
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output), safe_serialization=True)
    return AdaptationResult(
        documents=len(fields),
        pairs=len(pairs),
        steps=len(plan),
        seconds=seconds,
        first_loss=losses[0] if losses else math.nan,
        last_loss=losses[-1] if losses else math.nan,
    )
