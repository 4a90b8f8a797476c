"""The API's docs page in a real browser: /docs renders Swagger UI from the service's own files
(nothing is fetched from elsewhere) and lists every operation of the OpenAPI document, grouped
by tag."""

from __future__ import annotations

from tests.browser.conftest import Console, run_scenario


def test_the_docs_page_lists_every_route_from_the_services_own_files(console: Console) -> None:
    status, document = console.call("GET", "/openapi.json")
    assert status == 200, document
    result = run_scenario("api_docs", base=console.served.base)
    documented = sorted((method, path) for path, item in document["paths"].items()
                        for method in item if method != "parameters")
    shown = sorted((op["method"], op["path"]) for op in result["operations"])
    assert shown == documented
    assert ("post", "/api/v1/saga/sagas") in shown and ("get", "/docs") in shown
    assert result["outside"] == []
    assert result["title"].startswith(document["info"]["title"])
    assert set(result["tags"]) == {tag["name"] for tag in document["tags"]}
    assert sorted(result["models"]) == sorted(document["components"]["schemas"])
