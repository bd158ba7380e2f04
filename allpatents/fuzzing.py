"""Generated requests to every URL of the site, none of which may answer 5xx: `manage.py fuzz_site`.

Hypothesis builds them: examiners' queries from the query language's grammar, text and Unicode of
any kind, raw bytes in the query string, and ids, dates, pages and codes for every URL pattern, in
and out of range. Requests run in this process through Django's test client (no network, no rate
limits), so thousands take minutes. /api/schema gets schemathesis as well (`run_schemathesis`).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from search.models import PUBLIC_ID_PREFIX

Request = tuple[str, str]  # path, query string

_WORDS = st.sampled_from(["gear", "wheel", "inflat$", "wom?n", '"light emitting"', "charg$3", "TTL/gear", "ti:lens"])
examiner_queries = st.recursive(
    _WORDS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["AND", "OR", "NOT", "XOR", "ADJ", "NEAR3", "WITH", "SAME", ""]), inner).map(
            " ".join
        ),
        inner.map(lambda query: f"({query})"),
        inner.map(lambda query: f"-{query}"),
        inner.map(lambda query: f"{query}.ab."),
    ),
    max_leaves=40,
)
any_text = st.text(max_size=300) | st.text(alphabet='()"-$?.,/:; ANDORXTW0123456789abc\t\n', max_size=300)
queries = examiner_queries | any_text
numbers = st.integers(min_value=-(2**70), max_value=2**70).map(str)
small_numbers = st.integers(min_value=-3, max_value=2_000).map(str)
dates = st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)).map(str)
values = st.one_of(small_numbers, numbers, dates, st.text(max_size=40), st.sampled_from(["", "null", "nan", "-0"]))


def _choice(*valid: str) -> st.SearchStrategy[str]:
    return st.sampled_from(valid) | values


def _parameters(**fields: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A query string with any subset of these parameters, sometimes a parameter twice or a stranger."""
    chosen = st.fixed_dictionaries({}, optional=fields)
    extra = st.lists(st.tuples(st.sampled_from([*fields, "x", ""]), values), max_size=2)
    return st.tuples(chosen, extra).map(lambda pair: urlencode([*pair[0].items(), *pair[1]]))


_FILTERS = {
    "before": dates | values,
    "after": dates | values,
    "origin": _choice("generated", "reference"),
    "run": small_numbers | values,
    "min_quality": st.floats(allow_nan=True).map(str) | values,
    "classification": _choice("H01M", "A61B17/072", "g02b 23"),
}
_SEARCH = {
    "q": queries,
    "mode": _choice("fulltext", "semantic", "hybrid"),
    "sort": _choice("relevance", "date"),
    "op": _choice("AND", "OR", "and"),
    **_FILTERS,
}
search_parameters = _parameters(**_SEARCH, page=small_numbers | values)
api_search_parameters = _parameters(**_SEARCH, limit=small_numbers | values, offset=small_numbers | values)
ids = st.one_of(
    st.integers(min_value=0, max_value=2_000).map(lambda n: f"{PUBLIC_ID_PREFIX}{n:08d}"),
    st.integers(min_value=-5, max_value=2**64).map(str),
    st.sampled_from(["US11147202B2", "atp-1", f"{PUBLIC_ID_PREFIX}", "ATP-999999999999"]),
    st.text(min_size=1, max_size=40),
)
segment = st.text(min_size=1, max_size=40).map(lambda text: quote(text, safe=""))


def _path(template: str, *parts: st.SearchStrategy[str]) -> st.SearchStrategy[Request]:
    return st.tuples(*parts).map(lambda values: (template.format(*(quote(v, safe="") for v in values)), ""))


raw_bytes = st.binary(max_size=200).map(lambda data: "".join(f"%{byte:02X}" for byte in data))
year, month, day = small_numbers, st.integers(-1, 14).map(str), st.integers(-1, 33).map(str)

requests: st.SearchStrategy[Request] = st.one_of(
    search_parameters.map(lambda qs: ("/search/", qs)),
    st.tuples(st.sampled_from(["/search/", "/api/search", "/search/text/"]), raw_bytes),
    _parameters(text=any_text | examiner_queries, **_FILTERS).map(lambda qs: ("/search/text/", qs)),
    st.tuples(st.sampled_from(["csv", "ris", "bib"]), search_parameters).map(
        lambda pair: (f"/search/export.{pair[0]}", pair[1])
    ),
    api_search_parameters.map(lambda qs: ("/api/search", qs)),
    _path("/api/patents/{}", ids),
    st.tuples(ids, _parameters(limit=small_numbers | values)).map(
        lambda pair: (f"/api/patents/{quote(pair[0], safe='')}/similar", pair[1])
    ),
    _path("/patents/{}/", ids),
    st.tuples(ids, st.sampled_from(["txt", "json", "pdf", "bib", "ris"])).map(
        lambda pair: (f"/patents/{quote(pair[0], safe='')}.{pair[1]}", "")
    ),
    _parameters(page=small_numbers | values).map(lambda qs: ("/browse/", qs)),
    _path("/browse/{}/{}/", year, month),
    _path("/browse/{}/{}/{}/", year, month, day),
    _path("/browse/runs/{}/", small_numbers),
    st.tuples(segment, _parameters(page=small_numbers | values)).map(
        lambda pair: (f"/browse/classification/{pair[0]}/", pair[1])
    ),
    st.tuples(dates, st.sampled_from(["manifest.json", "documents.jsonl.gz"])).map(
        lambda pair: (f"/publications/{pair[0]}/{pair[1]}", "")
    ),
    _path("/runs/{}/", small_numbers),
    _path("/runs/{}/progress/", small_numbers),
    _parameters(page=small_numbers | values).map(lambda qs: ("/feed.atom", qs)),
    st.tuples(segment, _parameters(p=small_numbers | values)).map(lambda pair: (f"/sitemap-{pair[0]}.xml", pair[1])),
    st.tuples(segment).map(lambda parts: (f"/{parts[0]}", "")),
)


@dataclass
class Report:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # "500 GET /path?query"

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "examples": self.server_errors[:20],
        }


def fuzz(count: int, *, random_seed: int = 0, on_request: Callable[[], None] | None = None) -> Report:
    """`count` generated requests through the test client; every answer of 500 or more is kept."""
    from django.test import Client

    client = Client(raise_request_exception=False, HTTP_HOST="localhost")
    report = Report()

    @seed(random_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # every failure is kept; none is shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(requests)
    def send(request: Request) -> None:
        path, query_string = request
        response = client.generic("GET", path, QUERY_STRING=query_string)
        report.requests += 1
        report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors.append(f"{response.status_code} GET {path}?{query_string}")
        if on_request:
            on_request()

    send()
    return report


def run_schemathesis(base_url: str, *, max_examples: int) -> tuple[int, str]:
    """schemathesis with every check against the running server's /api/schema (schemathesis.toml beside
    manage.py); its exit status and the end of its report ("Test cases: N generated, ...")."""
    from django.conf import settings as django_settings

    executable = shutil.which("schemathesis", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if executable is None:
        raise RuntimeError("schemathesis is not installed (it is in requirements.txt: make .venv/.installed)")
    result = subprocess.run(
        [executable, "run", f"{base_url}/api/schema", "--checks", "all", "--max-examples", str(max_examples)],
        cwd=django_settings.BASE_DIR,  # where schemathesis.toml is
        capture_output=True,
        text=True,
    )
    return result.returncode, result.stdout[-4000:]
