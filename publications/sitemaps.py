"""sitemap.xml: every document, the days of the archive and the fixed pages.

The sitemaps framework splits a section into pages of 50,000 URLs, and the
index at /sitemap.xml lists them, so a million documents are twenty pages.
"""

from __future__ import annotations

import datetime

from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet
from django.db.models.functions import TruncDay
from django.urls import reverse

from search.models import Patent


class DocumentSitemap(Sitemap):
    limit = 50_000
    changefreq = "never"  # published text never changes

    def items(self) -> QuerySet[Patent]:
        return Patent.objects.only("id", "published_at").order_by("id")

    def lastmod(self, item: Patent) -> datetime.datetime:
        return item.published_at


class DaySitemap(Sitemap):
    changefreq = "daily"

    def items(self) -> list[datetime.date]:
        days = Patent.objects.annotate(day=TruncDay("published_at", tzinfo=datetime.UTC)).values_list("day", flat=True)
        return sorted({day.date() for day in days.distinct()}, reverse=True)

    def location(self, item: datetime.date) -> str:
        return reverse("publications:day", args=[item.year, item.month, item.day])


class PageSitemap(Sitemap):
    changefreq = "weekly"

    def items(self) -> list[str]:
        return [
            "search:home",
            "search:syntax",
            "publications:browse",
            "publications:classifications",
            "publications:runs",
        ]

    def location(self, item: str) -> str:
        return reverse(item)


SITEMAPS = {"documents": DocumentSitemap, "days": DaySitemap, "pages": PageSitemap}
