"""The JSON API's contract: shapes, lookups by either id, errors as JSON with a message, the schema."""

import datetime

import pytest
from django.test import Client

from search.models import Patent

pytestmark = pytest.mark.django_db


def test_search_returns_the_documented_shape(client: Client, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]

    response = client.get("/api/search", {"q": "ti:truck", "limit": 1})

    assert response.status_code == 200
    assert response.json() == {
        "mode": "fulltext",
        "total": 1,
        "total_is_exact": True,
        "offset": 0,
        "limit": 1,
        "results": [
            {
                "id": truck.public_id,
                "source_id": "US11147202B2",
                "title": "Wheeled hand truck",
                "origin": "reference",
                "score": response.json()["results"][0]["score"],
                "snippet": response.json()["results"][0]["snippet"],
                "url": f"http://testserver/patents/{truck.public_id}/",
                "published_at": response.json()["results"][0]["published_at"],
                "publication_date": "2021-10-19",
            }
        ],
    }
    assert response.json()["results"][0]["score"] > 0
    assert datetime.datetime.fromisoformat(response.json()["results"][0]["published_at"]) == truck.published_at


def test_search_filters_and_modes(client: Client, imported: dict[str, Patent]) -> None:
    everything = client.get("/api/search", {"q": "a wheeled cart", "mode": "semantic", "limit": 10}).json()
    early = client.get("/api/search", {"q": "a wheeled cart", "mode": "semantic", "before": "2021-01-01"}).json()

    assert everything["mode"] == "semantic"
    assert len(everything["results"]) == 5
    assert [result["source_id"] for result in early["results"]] == [
        patent.source_id for patent in imported.values() if patent.publication_date.year < 2021
    ]
    assert client.get("/api/search", {"q": "truck", "origin": "generated"}).json()["results"] == []


@pytest.mark.parametrize(
    ("parameters", "status", "message"),
    [
        ({"q": "(truck"}, 400, "Unbalanced parentheses: this '(' is never closed (at character 1)"),
        ({"q": "truck AND"}, 400, "AND needs a term after it (at character 7)"),
        ({"q": "x" * 50_000}, 422, "q: String should have at most 4000 characters"),
        ({"q": "  "}, 422, "q: String should match pattern"),
        ({"q": "truck", "limit": ["5", "7"]}, 422, "limit: given more than once"),
        ({"q": "truck\x07"}, 400, "The query contains a control character (U+0007) (at character 6)"),
        ({"q": "truck", "limit": 500}, 422, "limit: Input should be less than or equal to 100"),
        ({"q": "truck", "offset": 1000}, 422, "offset: Input should be less than 1000"),
        ({"q": "truck", "before": "2021-13-01"}, 422, "before: Input should be a valid date"),
        ({"q": "truck", "mode": "magic"}, 422, "mode: Input should be 'fulltext', 'semantic' or 'hybrid'"),
        ({}, 422, "q: Field required"),
    ],
)
def test_bad_requests_get_a_json_message_and_a_4xx(
    client: Client, imported: dict[str, Patent], parameters: dict[str, object], status: int, message: str
) -> None:
    response = client.get("/api/search", parameters)
    assert response.status_code == status
    assert response.json()["message"].startswith(message)


def test_an_empty_date_window_and_the_last_page_are_answered_not_refused(
    client: Client, imported: dict[str, Patent]
) -> None:
    empty = client.get("/api/search", {"q": "truck", "after": "2021-01-01", "before": "2021-01-01"})
    last = client.get("/api/search", {"q": "truck", "offset": 995, "limit": 20})

    assert (empty.status_code, empty.json()["total"], empty.json()["results"]) == (200, 0, [])
    assert (last.status_code, last.json()["offset"], last.json()["limit"]) == (200, 995, 5)


def test_the_schema_states_every_bound_and_every_error_answer(client: Client, db: None) -> None:
    schema = client.get("/api/schema").json()
    search = schema["paths"]["/api/search"]["get"]
    bounds = {p["name"]: p["schema"] for p in search["parameters"] if p["name"] in ("limit", "offset")}

    assert (bounds["limit"]["minimum"], bounds["limit"]["maximum"]) == (1, 100)
    assert (bounds["offset"]["minimum"], bounds["offset"]["exclusiveMaximum"]) == (0, 1000)
    assert sorted(search["responses"]) == ["200", "400", "414", "422", "429", "503"]
    document = schema["paths"]["/api/patents/{identifier}"]["get"]["responses"]
    similar = schema["paths"]["/api/patents/{identifier}/similar"]["get"]["responses"]
    assert sorted(document) == ["200", "404", "410", "414", "429", "503"]
    assert sorted(similar) == ["200", "404", "410", "414", "422", "429", "503"]


def test_a_document_by_our_id_or_its_publication_number(client: Client, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]

    by_id = client.get(f"/api/patents/{truck.public_id}").json()
    by_number = client.get("/api/patents/US11147202B2").json()

    assert by_id == by_number
    assert by_id["sha256"] == truck.sha256
    assert by_id["claims"][0] == {"number": 1, "through": None, "text": truck.claims[0]["text"]}
    assert by_id["provenance"] is None
    assert client.get("/api/patents/ATP-99999999").json() == {"message": "No document ATP-99999999"}


def test_a_withdrawn_document_answers_410(client: Client, imported: dict[str, Patent]) -> None:
    public_id = imported["US11147202B2"].public_id
    imported["US11147202B2"].withdraw(reason="Duplicate of another document")

    response = client.get(f"/api/patents/{public_id}")

    assert response.status_code == 410
    assert response.json()["message"].endswith("Duplicate of another document")


def test_similar_documents_exclude_the_document_itself(client: Client, imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]

    response = client.get(f"/api/patents/{truck.public_id}/similar", {"limit": 4})

    ids = [result["id"] for result in response.json()["results"]]
    assert len(ids) == 4
    assert truck.public_id not in ids


def test_openapi_schema_documents_the_endpoints(client: Client) -> None:
    schema = client.get("/api/schema").json()
    assert set(schema["paths"]) == {
        "/api/search", "/api/patents/{identifier}", "/api/patents/{identifier}/similar",
        "/api/work", "/api/work/{unit_id}/results", "/api/work/{unit_id}/release",
    }  # fmt: skip
    parameters = {parameter["name"] for parameter in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert {"q", "mode", "before", "after", "origin", "limit", "offset"} <= parameters


@pytest.mark.parametrize("path", ["/api/search", "/search/"])
def test_a_query_nested_600_deep_is_a_400_that_says_why(client: Client, imported: dict, path: str) -> None:
    nested = "(" * 600 + "truck" + ")" * 600

    fulltext = client.get(path, {"q": nested, "mode": "fulltext"})
    hybrid = client.get(path, {"q": nested, "mode": "hybrid"})

    assert fulltext.status_code == 400
    assert "nests more than 32 levels" in fulltext.content.decode()
    assert hybrid.status_code == 200  # hybrid reads what isn't valid syntax as plain words
