"""`saga callbacks list|succeed|fail`: the open callbacks (approvals among them) and
completing one from a terminal, as a caller with role approver or above."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from chalicelib.domain.callbacks import APPROVED
from infra.api_client import ApiClient, ApiError
from infra.cli_io import emit, load
from infra.exit_codes import Exit
from infra.text_table import format_table

INPUT_SHOWN = 60  # characters of an approval's input in the table (--json has it whole)


def callbacks(args: argparse.Namespace, api: ApiClient) -> int:
    if args.action == "list":
        return _list(args, api)
    path = f"/callbacks/{urllib.parse.quote(args.id, safe='')}/{args.action}"
    if args.action == "succeed":
        result = APPROVED if args.result is None else result_of(args.result)
        if args.comment is not None:
            result = {**result, "comment": args.comment}
        answer = api.call("POST", path, {"result": result})
    else:
        if not args.reason.strip():
            raise ApiError(-2, "callbacks fail needs a --reason in words (the execution's "
                               "error carries it)")
        answer = api.call("POST", path, {"error": args.error, "reason": args.reason})
    emit(args, answer, f"{answer['callback_id']}: step {answer['step_id']} of execution "
                       f"{answer['execution_id']} is {answer['step_status']}")
    return Exit.OK


def result_of(given: str) -> dict[str, Any]:
    """--result: a JSON object, or @FILE (JSON or YAML by its suffix; @- for stdin)."""
    if given.startswith("@"):
        data = load(given[1:])
    else:
        try:
            data = json.loads(given)
        except json.JSONDecodeError as error:
            raise ApiError(-2, f"--result is not valid JSON: {error.msg} (column "
                               f"{error.colno}); give a JSON object or @FILE") from None
    if not isinstance(data, dict):
        raise ApiError(-2, f"--result must be a JSON object, not {type(data).__name__}")
    return data


def _list(args: argparse.Namespace, api: ApiClient) -> int:
    query = urllib.parse.urlencode([(key, value) for key, value in (
        ("approval", "true" if args.approvals else None), ("saga_id", args.saga),
        ("limit", args.limit)) if value])
    page = api.call("GET", f"/callbacks?{query}")
    emit(args, page, listing_text(page, approvals=args.approvals))
    return Exit.OK


def listing_text(page: dict[str, Any], *, approvals: bool) -> str:
    """The open callbacks as a table, and how many there are."""
    what = "approvals" if approvals else "callbacks"
    if not page["items"]:
        return f"no open {what}"
    rows = [[item["callback_id"], "approval" if item["approval"] else "callback",
             f"{item['saga_id']} {item['version']}", item["execution_id"],
             _step(item), item["since"][:19], item["until"][:19], _input(item)]
            for item in page["items"]]
    table = format_table(rows, ["CALLBACK", "KIND", "SAGA", "EXECUTION", "STEP", "SINCE",
                                "UNTIL", "INPUT"])
    more = "; more with --limit" if page.get("next_cursor") else ""
    return f"{table}\n{page['count']} shown of {page['total']} open {what}{more}"


def _step(item: dict[str, Any]) -> str:
    return f"{item['step_id']} ({item['step_name']})" if item.get("step_name") \
        else str(item["step_id"])


def _input(item: dict[str, Any]) -> str:
    if item.get("input") is None:
        return "-"
    text = json.dumps(item["input"], sort_keys=True, ensure_ascii=False)
    return text if len(text) <= INPUT_SHOWN else f"{text[:INPUT_SHOWN - 1]}…"


def add_actions(action: Callable[..., argparse.ArgumentParser]) -> None:
    """The command's actions, each a subcommand with its own options (`action` makes one,
    with the callback's id unless with_id=False)."""
    listing = action("list", "the open callbacks, oldest first", with_id=False)
    listing.add_argument("--approvals", action="store_true",
                         help="approvals only (callback steps with no action)")
    listing.add_argument("--saga", help="one saga's only")
    listing.add_argument("--limit", type=int, default=50,
                         help="at most this many (1 to 100)")
    succeed = action("succeed", "complete a waiting callback as succeeded (an approval: "
                     "approve it)")
    succeed.add_argument("--result", help="the step's result, a JSON object or @FILE "
                         "(default {\"approved\": true})")
    succeed.add_argument("--comment", help="added to the result as \"comment\"")
    fail = action("fail", "complete it as failed: it did nothing (an approval: reject it)")
    fail.add_argument("--reason", required=True,
                      help="why, in words (the execution's error says it)")
    fail.add_argument("--error", default="Rejected", help="the error's name (default Rejected)")
