"""The Atom feed of new publications."""

from __future__ import annotations

import datetime

from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.urls import reverse_lazy
from django.utils.feedgenerator import Atom1Feed

from search.models import Patent


class LatestPublications(Feed):
    feed_type = Atom1Feed
    title = "All the Patents: new publications"
    link = reverse_lazy("search:home")
    subtitle = "Machine-generated prior art and reference patents, as they are published."
    author_name = "All the Patents"

    def items(self) -> QuerySet[Patent]:
        fields = ("id", "title", "abstract", "origin", "published_at", "sha256", "model_name")
        return Patent.objects.only(*fields).order_by("-id")[:50]

    def item_title(self, item: Patent) -> str:
        return f"{item.public_id}: {item.title}"

    def item_description(self, item: Patent) -> str:
        label = "Machine-generated text. " if item.is_generated else ""
        return f"{label}{item.abstract} (SHA-256 {item.sha256})"

    def item_pubdate(self, item: Patent) -> datetime.datetime:
        return item.published_at

    def item_updateddate(self, item: Patent) -> datetime.datetime:
        return item.published_at  # published text never changes

    def item_guid(self, item: Patent) -> str:
        return item.get_absolute_url()
