"""Browsing, feeds and sitemaps: how readers and crawlers find every published document."""

import datetime
import xml.etree.ElementTree as ElementTree

import pytest
from django.test import Client

from search.models import Patent

pytestmark = pytest.mark.django_db


def test_browse_pages_query_a_fixed_number_of_times(
    client: Client, imported: dict[str, Patent], django_assert_max_num_queries: object
) -> None:
    today = datetime.datetime.now(datetime.UTC)
    # One more than before the mirror banner: whether this installation is a mirror (cached after).
    with django_assert_max_num_queries(4):
        page = client.get(f"/browse/{today:%Y/%m/%d}/").content.decode()
    assert page.count('class="result-title"') == 5


def test_feed_sitemap_and_robots_let_crawlers_find_every_document(client: Client, imported: dict[str, Patent]) -> None:
    atom = ElementTree.fromstring(client.get("/feed.atom").content)
    index = ElementTree.fromstring(client.get("/sitemap.xml").content)
    documents = ElementTree.fromstring(client.get("/sitemap-documents.xml").content)
    robots = client.get("/robots.txt").content.decode()

    namespace = {"atom": "http://www.w3.org/2005/Atom", "sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    assert len(atom.findall("atom:entry", namespace)) == 5
    assert "http://testserver/sitemap-documents.xml" in [
        loc.text for loc in index.findall("sm:sitemap/sm:loc", namespace)
    ]
    assert sorted(loc.text for loc in documents.findall("sm:url/sm:loc", namespace)) == sorted(
        f"http://testserver{patent.get_absolute_url()}" for patent in imported.values()
    )
    assert "User-agent: *\nAllow: /\n" in robots
    assert "Sitemap: http://testserver/sitemap.xml" in robots
