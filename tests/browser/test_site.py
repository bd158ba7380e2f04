"""The site in a real headless Chromium (Debian's), with axe-core checking accessibility.

Screenshots of the main pages, desktop and phone, go to var/screenshots/.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings

from search.models import Patent

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(settings.BASE_DIR) / "var" / "browser" / "axe.min.js"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists() or not AXE.exists(), reason="run `make test` to install Chromium and axe"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain test set-up.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    # axe-core is injected as an inline script, which the site's Content-Security-Policy forbids.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def accessibility_violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    tags = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']"
    result = page.evaluate(f"async () => await axe.run(document, {{runOnly: {{type: 'tag', values: {tags}}}}})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} elements)" for v in result["violations"]]


def test_search_open_a_patent_and_cite_it(page: Page, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]
    page.goto("/")
    screenshot(page, "home")
    page.fill("#q", "truck AND footplate")
    page.press("#q", "Enter")
    page.wait_for_selector(".results")
    assert "1 result · Keyword search" in page.inner_text(".summary")
    screenshot(page, "results")

    page.click("text=Wheeled hand truck")
    page.wait_for_selector("#citation")
    citation = page.inner_text("#citation")
    assert citation.startswith('All the Patents: "Wheeled hand truck", ATP-')
    assert "reference copy of US11147202B2) [online], published" in citation
    assert f"<URL: {page.url}>" in citation
    assert f"SHA-256 {truck.sha256}" in citation
    screenshot(page, "patent")


def test_every_mode_is_reachable_from_the_form(page: Page, imported: dict[str, Patent]) -> None:
    for value, label in (("fulltext", "Keyword"), ("semantic", "Semantic"), ("hybrid", "Hybrid")):
        page.goto("/search/?q=hand+truck")
        page.check(f'input[name="mode"][value="{value}"]')
        page.click("form.search-form button[type=submit]")
        page.wait_for_selector(".summary")
        assert f"{label} search" in page.inner_text(".summary")
    page.click("text=Filters and sorting")
    page.fill("#id_before", "2021-01-01")
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector(".summary")
    assert "before=2021-01-01" in page.url
    screenshot(page, "results-filtered")


def test_browse_by_date_and_classification(page: Page, imported: dict[str, Patent]) -> None:
    page.goto("/browse/")
    page.click(".counts-list a")
    page.click(".counts-list a")
    assert page.locator(".result").count() == 5
    screenshot(page, "browse-day")
    page.goto("/browse/classification/")
    page.click("text=A01B")
    assert page.locator(".result").count() == 2  # two sample patents are in A01B


def test_export_downloads_csv(page: Page, imported: dict[str, Patent]) -> None:
    page.goto("/search/?q=comprising&mode=fulltext")
    with page.expect_download() as download:
        page.click("text=CSV")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "id,source_id,title,origin,published_at,publication_date,url,sha256,score"
    assert len(lines) == 6


def test_feed_and_sitemap_parse(page: Page, imported: dict[str, Patent]) -> None:
    feed = ElementTree.fromstring(page.request.get("/feed.atom").body())
    sitemap = ElementTree.fromstring(page.request.get("/sitemap-documents.xml").body())
    assert len(feed.findall("{http://www.w3.org/2005/Atom}entry")) == 5
    assert len(sitemap.findall("{http://www.sitemaps.org/schemas/sitemap/0.9}url")) == 5


@pytest.mark.parametrize(
    "path",
    ["/", "/search/?q=truck+AND+footplate", "/search/?q=(truck", "patent", "similar", "/search/syntax/",
     "/search/text/", "/browse/", "/browse/classification/", "/publications/", "/publications/procedure/",
     "/contributors/"],
)  # fmt: skip
def test_pages_pass_axe_wcag_21_aa(page: Page, imported: dict[str, Patent], path: str) -> None:
    if path in {"patent", "similar"}:
        url = imported["US11147202B2"].get_absolute_url()
        path = url if path == "patent" else f"{url}similar/?before=2022-01-01"
    page.goto(path)
    assert page.title() != "Page not found at /"
    assert accessibility_violations(page) == []


@pytest.mark.parametrize("path", ["/", "patent", "/search/?q=truck", "/api/docs", "/admin/login/"])
def test_pages_run_under_their_content_security_policy(
    browser: Browser, live_server: LiveServer, imported: dict[str, Patent], path: str
) -> None:
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    if path == "patent":
        path = imported["US11147202B2"].get_absolute_url()

    assert page.goto(path).status == 200
    page.wait_for_load_state("networkidle")

    assert refused == []
    if path == "/api/docs":
        assert page.locator(".swagger-ui .info .title").first.is_visible()  # drawn by its own scripts
    context.close()


def test_a_patent_page_meets_zoteros_embedded_metadata_conventions(page: Page, imported: dict[str, Patent]) -> None:
    # Zotero's "Embedded Metadata" translator saves a page that has citation_title and a date, and
    # attaches the file citation_pdf_url names.
    truck = imported["US11147202B2"]
    page.goto(truck.get_absolute_url())

    def meta(name: str) -> str | None:
        return page.locator(f'meta[name="{name}"]').get_attribute("content")

    assert meta("citation_title") == page.locator("h1").inner_text() == "Wheeled hand truck"
    assert meta("citation_publication_date") == "2021/10/19"
    assert meta("citation_abstract_html_url") == page.url
    pdf = page.request.get(meta("citation_pdf_url"))
    assert (pdf.status, pdf.headers["content-type"]) == (200, "application/pdf")
    assert pdf.body().startswith(b"%PDF-")


def test_result_pages_move_through_results_by_key_but_never_while_typing(
    page: Page, imported: dict[str, Patent]
) -> None:
    page.goto("/search/?q=comprising&mode=fulltext")
    titles = page.locator("ol.results a.result-title")
    focused = "document.activeElement.textContent"

    page.keyboard.press("j")
    assert page.evaluate(focused) == titles.nth(0).inner_text()
    page.keyboard.press("j")
    assert page.evaluate(focused) == titles.nth(1).inner_text()
    page.keyboard.press("k")
    assert page.evaluate(focused) == titles.nth(0).inner_text()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    page.keyboard.press("End")
    page.keyboard.type(" jk")
    assert page.locator("#id_q").input_value() == "comprising jk"  # typed, not taken
    page.evaluate("document.activeElement.blur()")  # out of the field, the keys work again
    page.keyboard.press("j")
    assert page.evaluate(focused) == titles.nth(0).inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url("**/patents/**")


def test_keyboard_reaches_the_search_box_with_a_visible_focus(page: Page, imported: dict[str, Patent]) -> None:
    page.goto("/search/syntax/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "masthead-q"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_phone_layout(browser: object, live_server: object, imported: dict[str, Patent]) -> None:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True)
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


def result_titles(page: Page) -> list[str]:
    return page.locator("ol.results a.result-title").all_inner_texts()


def search_from_the_box(page: Page, query: str) -> None:
    page.fill("#id_q", query)
    page.click("form.search-form button[type=submit]")
    page.wait_for_load_state()


def test_the_history_numbers_searches_combines_them_exports_the_record_and_clears(
    page: Page, imported: dict[str, Patent]
) -> None:
    from pypdf import PdfReader

    page.goto("/search/?q=comprising&mode=fulltext")
    page.reload()  # a reload is the same search, not a new set
    search_from_the_box(page, "truck")
    search_from_the_box(page, "L1 NOT L2")
    combined = result_titles(page)
    rows = page.locator("#search-history tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).locator("td").nth(0).inner_text() == "L3"
    assert rows.nth(0).locator("td").nth(1).inner_text() == "L1 NOT L2\nAs run: (comprising) NOT (truck)"
    assert rows.nth(2).locator("td").nth(1).inner_text() == "comprising"
    screenshot(page, "search-history")

    with page.expect_download() as text_download:
        page.click("text=Search record (text)")
    record = Path(text_download.value.path()).read_text()
    with page.expect_download() as pdf_download:
        page.click("text=Search record (PDF)")
    pdf_text = " ".join(" ".join(p.extract_text() for p in PdfReader(pdf_download.value.path()).pages).split())

    page.goto("/search/syntax/")  # any page's search box combines sets
    page.fill("#masthead-q", "L1 NOT L2")
    page.press("#masthead-q", "Enter")
    page.wait_for_selector(".summary")
    assert result_titles(page) == combined
    search_from_the_box(page, "L7 AND truck")
    refusal = page.inner_text(".error")
    page.goto("/search/?" + "q=(comprising)+NOT+(truck)&mode=fulltext")
    assert combined == result_titles(page)  # the hand-expanded query finds the same documents
    assert len(combined) == 4
    sets = [line.split()[0] for line in record.splitlines() if line.startswith("L")]
    assert sets == ["L1", "L2", "L3"]
    assert "     As run:         (comprising) NOT (truck)" in record.splitlines()
    assert "As run: (comprising) NOT (truck)" in pdf_text
    assert refusal == "Your query can't be run: L7 is not a search in this session's history; " \
        'write "L7" to search for the word (at character 1)'  # fmt: skip

    page.click("text=Clear history")
    assert page.locator("#search-history").is_hidden()
    page.reload()
    assert page.locator("#search-history").is_hidden()


def test_without_javascript_search_works_without_the_history(
    browser: Browser, live_server: LiveServer, imported: dict[str, Patent]
) -> None:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/search/?q=truck&mode=fulltext")
    assert result_titles(page) == ["Wheeled hand truck"]
    assert page.locator("#search-history").is_hidden()
    context.close()


def test_marks_are_faithful_to_the_field_a_query_names(page: Page, imported: dict[str, Patent]) -> None:
    page.goto("/search/?q=truck&mode=fulltext")
    assert page.locator(".snippet mark").count() > 0  # the truck's abstract and claims say truck too

    page.goto("/search/?q=truck.ti.&mode=fulltext")

    assert page.locator(".result-title mark").all_inner_texts() == ["truck"]
    assert page.locator(".snippet mark").count() == 0
    screenshot(page, "results-title-field")
