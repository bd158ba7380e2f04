"""The patent store: published documents and the tombstones of withdrawn ones."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import (
    CombinedSearchVector,
    SearchQuery,
    SearchVector,
    SearchVectorCombinable,
    SearchVectorField,
)
from django.db import models, transaction
from django.db.models import F, Func, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Now
from django.urls import reverse
from pgvector.django import CosineDistance, HalfVectorField, HnswIndex, VectorField

from search.documents import Claim, claim_label

SEARCH_CONFIG = "english"
PUBLIC_ID_PREFIX = "ATP-"
_PUBLIC_ID = re.compile(rf"^{PUBLIC_ID_PREFIX}(\d+)$", re.IGNORECASE)


def format_public_id(number: int) -> str:
    """ATP-00000042: zero-padded so ids sort in publication order."""
    return f"{PUBLIC_ID_PREFIX}{number:08d}"


def parse_public_id(public_id: str) -> int | None:
    match = _PUBLIC_ID.match(public_id.strip())
    return int(match[1]) if match else None


class ClaimsSearchVector(SearchVectorCombinable, Func):
    """The claims' text (the string values of the JSON list) as weight-C lexemes."""

    template = (
        f"setweight(jsonb_to_tsvector('{SEARCH_CONFIG}'::regconfig, %(expressions)s, '[\"string\"]'::jsonb), 'C')"
    )
    output_field = SearchVectorField()


class StructureVector(Func):
    """Lexemes positioned by sentence or by paragraph (see migration 0005), for WITHn and SAMEn."""

    function = "search_structure_vector"
    output_field = SearchVectorField()

    def __init__(self, *, by_sentence: bool) -> None:
        super().__init__(F("title"), F("abstract"), F("claims"), Value(by_sentence))


# What a list of documents shows (search results, browsing, the home page): no text, no vectors.
LIST_FIELDS = ("id", "title", "origin", "source_id", "publication_date", "published_at", "generation_run_id")


class Origin(models.TextChoices):
    GENERATED = "generated", "Machine-generated"
    REFERENCE = "reference", "Imported reference patent"


class PatentQuerySet(models.QuerySet["Patent"]):
    def matching(self, tsquery: str, condition: str = "", parameters: Sequence[str] = ()) -> PatentQuerySet:
        """Documents matching a compiled query (search/query.py): the GIN index finds them, `condition` re-checks."""
        matches = self.filter(search_vector=SearchQuery(tsquery, search_type="raw", config=SEARCH_CONFIG))
        if condition:
            matches = matches.filter(RawSQL(condition, list(parameters), output_field=models.BooleanField()))
        return matches

    def semantic(self, vector: Sequence[float], *, exact: bool = False) -> PatentQuerySet:
        """Nearest documents first, each with its full-precision cosine `distance`.

        In the order of the HNSW graph over half-precision vectors, unless `exact`: then by every
        row's full-precision distance (for few rows, or a benchmark's baseline).
        """
        documents = self.filter(embedding__isnull=False).annotate(distance=CosineDistance("embedding", vector))
        if exact:
            return documents.order_by("distance", "id")
        return documents.order_by(CosineDistance(HALF_PRECISION_EMBEDDING, vector))


def title_and_abstract_vector() -> CombinedSearchVector:
    """Title (weight A) then abstract (B): the start of the whole-text vector, and the in-row one."""
    return SearchVector("title", weight="A", config=SEARCH_CONFIG) + SearchVector(
        "abstract", weight="B", config=SEARCH_CONFIG
    )


# The documents' HNSW graph holds half-precision copies of their vectors: half the pages to keep in
# memory, and on bench_search's million documents the same 50 nearest as full precision for 99.98%.
HALF_PRECISION_EMBEDDING = Cast("embedding", HalfVectorField(dimensions=384))


class Patent(models.Model):
    """A published document: its text never changes once it is stored.

    Database triggers (migrations 0002 and 0014) stamp `published_at` with the
    server's clock and `sha256` with the hash of `text` on INSERT, refuse any
    UPDATE of the published text, and refuse a DELETE that leaves no tombstone.
    On a mirror installation they keep the origin's `published_at` instead and
    stamp `first_seen_at`, and refuse any document that is not a copy.
    """

    id = models.BigAutoField(primary_key=True)
    title = models.TextField()
    abstract = models.TextField()
    claims = models.JSONField(help_text="Ordered list of {number, text}.")
    text = models.TextField(help_text="Canonical markdown: the text that is hashed and never changes.")
    sha256 = models.CharField(max_length=64, db_default="", editable=False)
    published_at = models.DateTimeField(db_default=Now(), editable=False)
    publication_date = models.DateField(
        db_default=Cast(Now(), models.DateField()),
        editable=False,
        help_text="When the text became public: a reference patent's own publication date, "
        "our publication date (UTC) for a generated one. The date filters use it.",
    )

    origin = models.CharField(max_length=16, choices=Origin.choices)
    source_id = models.CharField(
        max_length=32, unique=True, null=True, blank=True, help_text="Publication number of a reference patent."
    )
    source_date = models.DateField(null=True, blank=True)
    cpc = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    ipc = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    cpc_subclasses = models.GeneratedField(
        expression=Func(F("cpc"), function="search_cpc_subclasses"),
        output_field=ArrayField(models.CharField(max_length=4)),
        db_persist=True,
    )

    # Provenance of generated documents.
    generation_run = models.ForeignKey(
        "generation.GenerationRun", null=True, blank=True, on_delete=models.PROTECT, related_name="patents"
    )
    model_name = models.CharField(max_length=200, blank=True)
    model_revision = models.CharField(max_length=64, blank=True)
    prompt_mode = models.CharField(max_length=16, blank=True)
    decoding = models.JSONField(default=dict, blank=True, help_text="temperature, top_p, top_k, ...")
    seed = models.BigIntegerField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    contributed_by = models.CharField(
        max_length=80, blank=True, help_text="The outside contributor who generated it (their public name)."
    )
    checks_rerun = models.JSONField(
        default=list, blank=True, help_text="Checks the server re-ran on a contributed text before publishing it."
    )

    # A copy of another installation's record (publications/mirroring.py): the document's URL there.
    # Its `published_at` is the origin's date, kept as the origin published it; `first_seen_at` is
    # when this copy first stored it, by this database's clock (migration 0014).
    mirrored_from = models.URLField(max_length=500, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    quality_score = models.FloatField(null=True, blank=True)
    quality_flags = models.JSONField(default=list, blank=True)

    embedding = VectorField(dimensions=384, null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=title_and_abstract_vector() + ClaimsSearchVector("claims"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # The first tier of ranking when a query matches too many documents to rank them all: title and
    # abstract, kept in the row (small, unlike the TOASTed whole-text vector), with the same weights
    # and positions as the start of search_vector.
    title_abstract_vector = models.GeneratedField(
        expression=title_and_abstract_vector(),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # Not indexed: they only re-check the candidates the main vector's index found.
    sentence_vector = models.GeneratedField(
        expression=StructureVector(by_sentence=True), output_field=SearchVectorField(), db_persist=True
    )
    paragraph_vector = models.GeneratedField(
        expression=StructureVector(by_sentence=False), output_field=SearchVectorField(), db_persist=True
    )

    objects = PatentQuerySet.as_manager()

    # No default ordering: every query that lists documents says its order (a hidden ORDER BY cost every
    # search path a sort, and full text 484 ms at p95 on the 1M benchmark, before each path undid it).
    class Meta:
        indexes = [
            GinIndex(fields=["search_vector"], name="patent_search_vector_gin"),
            GinIndex(fields=["title_abstract_vector"], name="patent_title_abstract_gin"),
            HnswIndex(
                OpClass(HALF_PRECISION_EMBEDDING, name="halfvec_cosine_ops"),
                name="patent_embedding_half_hnsw",
                m=16,
                ef_construction=128,  # 1M documents: recall@10 0.964 at ef_search 300, against 0.938 at 400 with 64
            ),
            models.Index(fields=["published_at"], name="patent_published_at"),
            models.Index(fields=["origin", "published_at"], name="patent_origin_published_at"),
            models.Index(fields=["publication_date", "id"], name="patent_publication_date"),
            GinIndex(fields=["cpc_subclasses"], name="patent_cpc_subclasses_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("search:patent", args=[self.public_id])

    @property
    def public_id(self) -> str:
        return format_public_id(self.id)

    @property
    def numbered_claims(self) -> list[tuple[str, str]]:
        claims: list[Claim] = self.claims
        return [(claim_label(claim), claim["text"]) for claim in claims]

    @property
    def is_generated(self) -> bool:
        return self.origin == Origin.GENERATED

    @property
    def provenance(self) -> dict[str, object] | None:
        """How a generated document was made; None for a reference patent."""
        if not self.is_generated:
            return None
        return {
            "model": self.model_name,
            "revision": self.model_revision,
            "prompt_mode": self.prompt_mode,
            "decoding": self.decoding,
            "seed": self.seed,
            "run": self.generation_run_id,
            "generated_at": self.generated_at.isoformat() if self.generated_at else None,
            # Generated on a contributor's machine: who, and what the server checked itself before trusting it.
            **({"contributor": self.contributed_by, "checks_rerun": self.checks_rerun} if self.contributed_by else {}),
        }

    def record(self, url: str) -> dict[str, object]:
        """Everything published about the document: its JSON in the API, the download and the daily dumps."""
        claims: list[Claim] = self.claims
        return {
            "id": self.public_id,
            "url": url,
            "origin": self.origin,
            "source_id": self.source_id,
            "source_date": self.source_date.isoformat() if self.source_date else None,
            "title": self.title,
            "abstract": self.abstract,
            "claims": [{"number": c["number"], "through": c.get("through"), "text": c["text"]} for c in claims],
            "text": self.text,
            "sha256": self.sha256,
            "published_at": self.published_at.isoformat(),
            "publication_date": self.publication_date.isoformat(),
            "cpc": self.cpc,
            "quality_score": self.quality_score,
            "provenance": self.provenance,
            # Only on a mirror: where the record is the origin's, and when this copy first stored it.
            **(
                {"mirror": {"origin_url": self.mirrored_from, "first_seen_at": self.first_seen_at.isoformat()}}
                if self.mirrored_from and self.first_seen_at
                else {}
            ),
        }

    def withdraw(self, *, reason: str) -> Tombstone:
        """Remove the document, leaving a tombstone so its URL answers 410."""
        with transaction.atomic():
            tombstone = Tombstone.objects.create(
                id=self.id,
                title=self.title,
                source_id=self.source_id or "",
                published_at=self.published_at,
                sha256=self.sha256,
                reason=reason,
            )
            self.delete()
        return tombstone


class Tombstone(models.Model):
    """What remains of a withdrawn document: enough to answer its URL with 410."""

    id = models.BigIntegerField(primary_key=True, help_text="The withdrawn document's number.")
    title = models.TextField()
    source_id = models.CharField(max_length=32, blank=True)
    published_at = models.DateTimeField()
    sha256 = models.CharField(max_length=64)
    withdrawn_at = models.DateTimeField(db_default=Now(), editable=False)
    reason = models.TextField()

    class Meta:
        ordering = ["-withdrawn_at"]

    def __str__(self) -> str:
        return f"{self.public_id} (withdrawn)"

    @property
    def public_id(self) -> str:
        return format_public_id(self.id)


class MinHashBand(models.Model):
    """One locality-sensitive band key of a document's MinHash signature (see search/minhash.py).

    The key is the primary key's first column, so finding the documents that
    share a band with a new text is an index lookup at any size of the store.
    """

    pk = models.CompositePrimaryKey("key", "patent")
    key = models.BigIntegerField()
    patent = models.ForeignKey(Patent, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.key} -> {self.patent_id}"


class PatentPassage(models.Model):
    """The vector of one window-sized passage of a document: title and abstract, or a run of claims.

    A paraphrase of one claim is diluted in the mean of all of a document's passages (its
    `embedding`); semantic search ranks the documents nearest by mean by their best passage
    instead (bench_relevance measures both). Read by document, through the primary key: an
    HNSW index of its own was four times the documents' and ranked no better.
    """

    pk = models.CompositePrimaryKey("patent", "position")
    patent = models.ForeignKey(Patent, on_delete=models.CASCADE, related_name="passages")
    position = models.PositiveSmallIntegerField()
    embedding = VectorField(dimensions=384)

    def __str__(self) -> str:
        return f"{self.patent_id} passage {self.position}"


class SearchTerm(models.Model):
    """Every distinct word of the published text, for expanding truncated terms (inflat$, wom?n).

    Filled by a statement trigger on search_patent (migration 0007); the
    trigram index answers the anchored regular expressions the wildcards
    become.
    """

    word = models.CharField(primary_key=True, max_length=64)
    lexeme = models.CharField(max_length=64, help_text="The word's English stem, as in the search vector.")

    class Meta:
        indexes = [GinIndex(fields=["word"], name="search_term_word_trgm", opclasses=["gin_trgm_ops"])]

    def __str__(self) -> str:
        return self.word
