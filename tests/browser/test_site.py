"""The site in a real headless Chromium (Debian's), with axe-core checking accessibility.

Screenshots of the main pages, desktop and phone, go to var/screenshots/.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from search.models import Patent

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(settings.BASE_DIR) / "var" / "browser" / "axe.min.js"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists() or not AXE.exists(), reason="run `make test` to install Chromium and axe"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain test set-up.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, live_server: object) -> Iterator[object]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def accessibility_violations(page: object) -> list[str]:
    page.add_script_tag(path=str(AXE))  # type: ignore[attr-defined]
    tags = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']"
    result = page.evaluate(f"async () => await axe.run(document, {{runOnly: {{type: 'tag', values: {tags}}}}})")  # type: ignore[attr-defined]
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} elements)" for v in result["violations"]]


def test_search_open_a_patent_and_cite_it(page: object, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]
    page.goto("/")  # type: ignore[attr-defined]
    screenshot(page, "home")
    page.fill("#q", "truck AND footplate")  # type: ignore[attr-defined]
    page.press("#q", "Enter")  # type: ignore[attr-defined]
    page.wait_for_selector(".results")  # type: ignore[attr-defined]
    assert "1 result · Keyword search" in page.inner_text(".summary")  # type: ignore[attr-defined]
    screenshot(page, "results")

    page.click("text=Wheeled hand truck")  # type: ignore[attr-defined]
    page.wait_for_selector("#citation")  # type: ignore[attr-defined]
    citation = page.inner_text("#citation")  # type: ignore[attr-defined]
    assert citation.startswith('All the Patents: "Wheeled hand truck", ATP-')
    assert "reference copy of US11147202B2) [online], published" in citation
    assert f"<URL: {page.url}>" in citation  # type: ignore[attr-defined]
    assert f"SHA-256 {truck.sha256}" in citation
    screenshot(page, "patent")


def test_every_mode_is_reachable_from_the_form(page: object, imported: dict[str, Patent]) -> None:
    for value, label in (("fulltext", "Keyword"), ("semantic", "Semantic"), ("hybrid", "Hybrid")):
        page.goto("/search/?q=hand+truck")  # type: ignore[attr-defined]
        page.check(f'input[name="mode"][value="{value}"]')  # type: ignore[attr-defined]
        page.click("form.search-form button[type=submit]")  # type: ignore[attr-defined]
        page.wait_for_selector(".summary")  # type: ignore[attr-defined]
        assert f"{label} search" in page.inner_text(".summary")  # type: ignore[attr-defined]
    page.click("text=Filters and sorting")  # type: ignore[attr-defined]
    page.fill("#id_before", "2021-01-01")  # type: ignore[attr-defined]
    page.click("form.search-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector(".summary")  # type: ignore[attr-defined]
    assert "before=2021-01-01" in page.url  # type: ignore[attr-defined]
    screenshot(page, "results-filtered")


def test_browse_by_date_and_classification(page: object, imported: dict[str, Patent]) -> None:
    page.goto("/browse/")  # type: ignore[attr-defined]
    page.click(".counts-list a")  # type: ignore[attr-defined]
    page.click(".counts-list a")  # type: ignore[attr-defined]
    assert page.locator(".result").count() == 5  # type: ignore[attr-defined]
    screenshot(page, "browse-day")
    page.goto("/browse/classification/")  # type: ignore[attr-defined]
    page.click("text=A01B")  # type: ignore[attr-defined]
    assert page.locator(".result").count() == 2  # type: ignore[attr-defined]  # two sample patents are in A01B


def test_export_downloads_csv(page: object, imported: dict[str, Patent]) -> None:
    page.goto("/search/?q=comprising&mode=fulltext")  # type: ignore[attr-defined]
    with page.expect_download() as download:  # type: ignore[attr-defined]
        page.click("text=CSV")  # type: ignore[attr-defined]
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "id,source_id,title,origin,published_at,publication_date,url,sha256,score"
    assert len(lines) == 6


def test_feed_and_sitemap_parse(page: object, imported: dict[str, Patent]) -> None:
    feed = ElementTree.fromstring(page.request.get("/feed.atom").body())  # type: ignore[attr-defined]
    sitemap = ElementTree.fromstring(page.request.get("/sitemap-documents.xml").body())  # type: ignore[attr-defined]
    assert len(feed.findall("{http://www.w3.org/2005/Atom}entry")) == 5
    assert len(sitemap.findall("{http://www.sitemaps.org/schemas/sitemap/0.9}url")) == 5


@pytest.mark.parametrize(
    "path",
    ["/", "/search/?q=truck+AND+footplate", "/search/?q=(truck", "patent", "/search/syntax/",
     "/search/text/", "/browse/", "/browse/classification/", "/publications/"],
)  # fmt: skip
def test_pages_pass_axe_wcag_21_aa(page: object, imported: dict[str, Patent], path: str) -> None:
    if path == "patent":
        path = imported["US11147202B2"].get_absolute_url()
    page.goto(path)  # type: ignore[attr-defined]
    assert page.title() != "Page not found at /"  # type: ignore[attr-defined]
    assert accessibility_violations(page) == []


def test_keyboard_reaches_the_search_box_with_a_visible_focus(page: object, imported: dict[str, Patent]) -> None:
    page.goto("/search/syntax/")  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "masthead-q"  # type: ignore[attr-defined]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")  # type: ignore[attr-defined]
    assert outline == "solid"


def test_phone_layout(browser: object, live_server: object, imported: dict[str, Patent]) -> None:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    truck = imported["US11147202B2"].get_absolute_url()
    for path, name in (("/", "phone-home"), (truck, "phone-patent"), ("/search/?q=truck", "phone-results")):
        # A fresh tab per page: a full-page screenshot resizes the emulated screen while it captures.
        page = context.new_page()
        assert page.goto(path).status == 200
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
        screenshot(page, name)
        page.close()
    context.close()
