"""Listing the open callbacks (GET /callbacks, GET /callbacks/count) over the in-memory read
model: each named from its definition version (read once per version per request), the
query parameters checked (a clear 400, never a 500), cursors sealed to this listing, and a
read model that cannot be reached answered 503."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.config import Settings, load_settings
from chalicelib.domain.errors import BadRequest, ErrorKind
from chalicelib.domain.models import StoredSaga
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from chalicelib.roots.parts import part
from chalicelib.testing import InMemoryDefinitionStore, InMemoryReadModel
from chalicelib.usecases.definitions import query_flag
from chalicelib.usecases.open_callbacks import CallbackListing
from chalicelib.usecases.ports import ReadModelDown
from tests.support.callback_streams import Waits, moment_after, written_waits

API = "/api/v1/saga"


class CountingDefinitions(InMemoryDefinitionStore):
    """The definitions the listing names steps from, counting its reads."""

    def __init__(self, sagas: dict[str, StoredSaga]) -> None:
        super().__init__()
        self.reads: list[tuple[str, int]] = []
        self.kept = {(saga.id, saga.revision): saga for saga in sagas.values()}

    def get_revision(self, saga_id: str, revision: int) -> StoredSaga | None:
        self.reads.append((saga_id, revision))
        return self.kept.get((saga_id, revision))


@pytest.fixture(scope="module")
def waits() -> Waits:
    return written_waits()


@pytest.fixture
def listing(waits: Waits) -> tuple[CallbackListing, InMemoryReadModel, CountingDefinitions]:
    reads = InMemoryReadModel()
    reads.apply_batch(waits.outbox)
    definitions = CountingDefinitions(waits.sagas)
    return (CallbackListing(reads, definitions, clock=lambda: moment_after(waits)), reads,
            definitions)


def test_each_open_callback_is_named_from_its_version_read_once(
        waits: Waits, listing: tuple[CallbackListing, InMemoryReadModel,
                                     CountingDefinitions]) -> None:
    service, _, definitions = listing
    listed = service.list(approval=None, saga_id=None, limit=None, cursor=None)
    assert listed.count == listed.total == len(listed.items) == 4
    names = {(item.saga_id, item.step_id): (item.step_name, item.step_description)
             for item in listed.items}
    assert names == {
        (waits.sagas["approvals"].id, "approve"): ("Manager approval",
                                                   "A manager approves the refund"),
        (waits.sagas["quick"].id, "approve"): ("Manager approval",
                                               "A manager approves the refund"),
        (waits.sagas["partner"].id, "confirm"): ("Confirm payment", "The provider confirms")}
    # Two approvals of one version, one each of two others: three reads, not four.
    assert sorted(definitions.reads) == sorted(
        (saga.id, saga.revision) for saga in waits.sagas.values())


def test_total_counts_every_page_and_a_gone_version_leaves_the_names_out(
        waits: Waits, listing: tuple[CallbackListing, InMemoryReadModel,
                                     CountingDefinitions]) -> None:
    service, _, definitions = listing
    definitions.kept.clear()  # the versions are gone (a destroyed saga's)
    page = service.list(approval="true", saga_id=None, limit="1", cursor=None)
    assert (page.count, page.total, page.next_cursor is not None) == (1, 3, True)
    assert page.items[0].approval and page.items[0].step_name is None
    assert page.items[0].execution_id == waits.open_approvals[0]  # the oldest first
    assert service.count(approval="true", saga_id=None).total == 3
    assert service.count(approval="false", saga_id=None).total == 1
    assert service.count(approval=None, saga_id=waits.sagas["quick"].id).total == 1


@pytest.mark.parametrize(("raw", "flag"), [(None, None), ("", None), ("true", True),
                                           ("false", False)])
def test_approval_is_true_or_false(raw: str | None, flag: bool | None) -> None:
    assert query_flag("approval", raw) is flag


@pytest.mark.parametrize("raw", ["yes", "1", "TRUE", "true ", "t"])
def test_any_other_approval_is_refused(raw: str) -> None:
    with pytest.raises(BadRequest, match="approval must be true or false"):
        query_flag("approval", raw)


def test_a_bad_limit_or_cursor_is_a_bad_request_and_a_lost_read_model_is_unavailable(
        listing: tuple[CallbackListing, InMemoryReadModel, CountingDefinitions]) -> None:
    service, reads, _ = listing
    for limit in ("0", "101", "²", "-1", "ten"):
        with pytest.raises(BadRequest, match="limit"):
            service.list(approval=None, saga_id=None, limit=limit, cursor=None)
    with pytest.raises(BadRequest, match="cursor"):
        service.list(approval=None, saga_id=None, limit=None, cursor="bm90IG9uZQ==")
    reads.available = False
    for call in (lambda: service.list(approval=None, saga_id=None, limit=None, cursor=None),
                 lambda: service.count(approval=None, saga_id=None)):
        with pytest.raises(ReadModelDown) as down:
            call()
        assert down.value.kind is ErrorKind.DATABASE_UNAVAILABLE


# -- the routes --------------------------------------------------------------------------------

class _NoLimit:
    def check(self, caller: str) -> None:
        return None


class _Parts(Container):
    def __init__(self, settings: Settings, service: CallbackListing) -> None:
        super().__init__(settings)
        self.service = service

    @part
    def rate_limiter(self) -> _NoLimit:
        return _NoLimit()

    @part
    def callback_listing(self) -> CallbackListing:
        return self.service


@pytest.fixture
def client(listing: tuple[CallbackListing, InMemoryReadModel,
                          CountingDefinitions]) -> Iterator[Client]:
    settings = load_settings(environ={"SAGA__LIMITS__CURSOR_SECRET": "unit"})
    runtime.use(_Parts(settings, listing[0]))
    try:
        with Client(app) as test_client:
            yield test_client
    finally:
        runtime.use(None)


def _get(client: Client, path: str) -> tuple[int, Any]:
    response = client.http.get(f"{API}{path}")
    return response.status_code, json.loads(response.body)


def test_the_listing_route_pages_with_sealed_cursors(waits: Waits, client: Client) -> None:
    status, first = _get(client, "/callbacks?approval=true&limit=2")
    assert status == 200, first
    assert set(first) == {"items", "next_cursor", "count", "total"}
    assert (first["count"], first["total"]) == (2, 3)
    item = first["items"][0]
    assert set(item) == {"callback_id", "execution_id", "saga_id", "version", "revision",
                         "step_id", "step_name", "step_description", "since", "until",
                         "approval", "input"}
    assert item["input"] == {"amount": "0.00", "reserved": "act.reserve"}
    status, second = _get(client, f"/callbacks?approval=true&limit=2"
                                  f"&cursor={first['next_cursor']}")
    assert status == 200 and second["next_cursor"] is None
    listed = [i["execution_id"] for i in first["items"] + second["items"]]
    assert sorted(listed) == sorted([*waits.open_approvals, *waits.quick])
    assert _get(client, "/callbacks/count?approval=true") == (200, {"total": 3})
    assert _get(client, f"/callbacks/count?saga_id={waits.sagas['partner'].id}") == (
        200, {"total": 1})


@pytest.mark.parametrize(("query", "says"), [
    ("?approval=maybe", "approval must be true or false"),
    ("?limit=0", "limit must be a whole number"),
    ("?status=RUNNING", "unknown query parameter(s): status"),
    ("?cursor=forged", "invalid cursor"),
    # Sealed for another listing: refused, not paged from wherever it points.
    ("?cursor=eyJhZnRlciI6ICJ4In0=.AAAAAAAAAAAAAAAAAAAAAA", "invalid cursor"),
])
def test_the_listing_route_refuses_bad_parameters_with_a_400(client: Client, query: str,
                                                             says: str) -> None:
    status, body = _get(client, f"/callbacks{query}")
    assert status == 400, body
    assert body["error"]["code"] == "bad_request" and says in body["error"]["message"]


def test_a_cursor_of_another_listing_is_refused(client: Client) -> None:
    from chalicelib.http.api import next_cursor

    other = next_cursor("executions", "eyJhZnRlciI6ICJ4In0=")
    status, body = _get(client, f"/callbacks?cursor={other}")
    assert status == 400 and "(callbacks)" in body["error"]["message"]
    status, body = _get(client, "/callbacks/count?limit=3")
    assert status == 400 and "unknown query parameter(s): limit" in body["error"]["message"]


def test_the_routes_answer_503_while_the_read_model_is_down(
        client: Client, listing: tuple[CallbackListing, InMemoryReadModel,
                                       CountingDefinitions]) -> None:
    listing[1].available = False
    for path in ("/callbacks", "/callbacks/count?approval=true"):
        status, body = _get(client, path)
        assert status == 503 and body["error"]["code"] == "database_unavailable", body
