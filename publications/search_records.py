"""The search record an examiner puts in the file: every search of a session, and the database searched.

MPEP 719.05 asks for the queries, the databases searched and the dates. The history lives in
the searcher's browser (static/js/search-history.js), which sends it here to be laid out; the
server keeps none of it. The database is described so that it can be cited and checked later:
its URL, what it held (generated and imported documents), and the latest daily manifest's date
and Merkle root, which commit to every document published up to then.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from fpdf import FPDF

from publications.models import DailyManifest
from search.models import Origin, Patent
from search.pdf import FONTS, paragraph

MAX_ENTRIES = 1000
# Bounds on what a browser may send, so a record stays a record: a query is at most 4,000
# characters as typed (search/query.py), more once its L-numbers are expanded.
LIMITS = {"typed": 4_000, "expanded": 40_000, "mode": 20, "time": 30}


class InvalidHistory(ValueError):
    """The history sent is not one this site's pages make."""


@dataclass(frozen=True)
class Entry:
    number: int
    typed: str
    expanded: str
    mode: str
    filters: tuple[str, ...]
    hits: int
    exact: bool
    time: str


@dataclass(frozen=True)
class Database:
    url: str
    generated: int
    reference: int
    manifest_date: datetime.date | None
    merkle_root: str
    manifest_url: str


def entries(history: Any) -> list[Entry]:
    """The history as the browser sent it (a JSON list), checked field by field."""
    if not isinstance(history, list) or not 0 < len(history) <= MAX_ENTRIES:
        raise InvalidHistory(f"The history must list between 1 and {MAX_ENTRIES} searches")
    checked = []
    for item in history:
        if not isinstance(item, dict):
            raise InvalidHistory("Each search in the history must be an object")
        for name, limit in LIMITS.items():
            if not isinstance(item.get(name), str) or len(item[name]) > limit:
                raise InvalidHistory(f"Each search needs '{name}' as text of at most {limit:,} characters")
        filters = item.get("filters", [])
        number, hits = item.get("number"), item.get("hits")
        if not isinstance(number, int) or not isinstance(hits, int) or isinstance(number, bool) or number < 1:
            raise InvalidHistory("Each search needs a whole 'number' of at least 1 and a whole count of 'hits'")
        if (
            not isinstance(filters, list)
            or len(filters) > 10
            or not all(isinstance(f, str) and len(f) <= 200 for f in filters)
        ):
            raise InvalidHistory("'filters' must be a list of at most 10 short texts")
        checked.append(
            Entry(
                number,
                item["typed"],
                item["expanded"],
                item["mode"],
                tuple(filters),
                hits,
                item.get("exact") is True,
                item["time"],
            )
        )
    return checked


def database(site_url: str, absolute: Callable[[str], str]) -> Database:
    """This site as it stands now: its URL, its holdings and its latest manifest (`absolute` makes its URL)."""
    counts = Patent.objects.aggregate(
        generated=Count("id", filter=Q(origin=Origin.GENERATED)),
        reference=Count("id", filter=Q(origin=Origin.REFERENCE)),
    )
    latest = DailyManifest.objects.only("date", "merkle_root").first()  # newest first
    return Database(
        url=site_url,
        generated=counts["generated"],
        reference=counts["reference"],
        manifest_date=latest.date if latest else None,
        merkle_root=latest.merkle_root if latest else "",
        manifest_url=absolute(latest.get_absolute_url()) if latest else "",
    )


def _hits(entry: Entry) -> str:
    count = f"{entry.hits:,}" if entry.exact else f"about {entry.hits:,}"
    return f"{count} document{'' if entry.hits == 1 else 's'}"


def header(db: Database, made_at: datetime.datetime) -> list[str]:
    lines = [
        "Search record",
        f"Database searched: All the Patents, {db.url}",
        f"  Holdings when the record was made: {db.generated + db.reference:,} documents "
        f"({db.generated:,} machine-generated, {db.reference:,} imported reference patents)",
    ]
    if db.manifest_date:
        lines += [
            f"  Latest daily publication manifest: {db.manifest_date.isoformat()} (UTC), Merkle root {db.merkle_root}",
            f"  {db.manifest_url}",
        ]
    else:
        lines.append("  No daily publication manifest yet (none is built before the first day of publication ends)")
    lines += [
        f"Record made: {made_at:%Y-%m-%d %H:%M:%S} UTC, from the searcher's browser history "
        "(the site keeps no queries)",
    ]
    return lines


def entry_lines(entry: Entry) -> list[str]:
    lines = [f"L{entry.number}   {entry.time.replace('T', ' ').rstrip('Z')} UTC   {entry.mode}   {_hits(entry)}"]
    lines.append(f"     Query as typed: {entry.typed}")
    if entry.expanded != entry.typed:
        lines.append(f"     As run:         {entry.expanded}")
    lines.append(f"     Filters:        {'; '.join(entry.filters) if entry.filters else 'none'}")
    return lines


def text(searches: list[Entry], db: Database, made_at: datetime.datetime) -> str:
    lines = [*header(db, made_at), ""]
    for entry in searches:
        lines += [*entry_lines(entry), ""]
    return "\n".join(lines)


def pdf(searches: list[Entry], db: Database, made_at: datetime.datetime) -> bytes:
    """The same record laid out for printing: A4, the database first, one block per search."""
    document = FPDF(format="A4")
    document.set_title("Search record")
    document.set_author("All the Patents")
    document.set_creation_date(made_at)
    document.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    document.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    document.set_margins(20, 18, 20)
    document.set_auto_page_break(auto=True, margin=18)
    document.add_page()
    title, *about = header(db, made_at)
    document.set_font("DejaVu", "B", 15)
    paragraph(document, 8, title)
    document.set_font("DejaVu", size=9)
    for line in about:
        paragraph(document, 5, line.strip())
    for entry in searches:
        first, *details = entry_lines(entry)
        document.ln(3)
        document.set_font("DejaVu", "B", 10)
        paragraph(document, 6, first)
        document.set_font("DejaVu", size=9)
        for line in details:
            # The text record aligns its values with spaces; in a proportional font one space reads better.
            paragraph(document, 5, re.sub(r":\s+", ": ", line.strip(), count=1))
    return bytes(document.output())
