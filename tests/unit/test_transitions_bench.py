"""bench.transitions' compiled rows (BENCHMARKS.md, "Conditions and fan-outs"): each case
walked through its compiled machine ends as its row says, never under its floor."""

from __future__ import annotations

from bench.compiled_transitions import compiled_rows


def test_every_compiled_case_ends_as_labelled_and_costs_at_least_its_floor() -> None:
    _, results = compiled_rows()
    by_case = {(r["saga"], r["case"]): r for r in results}
    for result in results:
        assert result["transitions"] >= result["floor"], result
        expected = "COMPLETED" if ("tolerated" in result["case"] or "happy" in result["case"]
                                   or "runs" in result["case"] or "skipped" in result["case"]) \
            else "COMPENSATED"
        assert result["status"] == expected, result
    # The figures BENCHMARKS.md prints.
    assert by_case[("fan-out of 10", "happy path")]["transitions"] == 18
    assert by_case[("fan-out of 10", "item 10 fails, 1 tolerated")]["transitions"] == 19
    assert by_case[("fan-out of 10", "item 10 fails, 9 items undone")]["transitions"] == 29
    skipped = by_case[("conditional 3 steps", "send-notification skipped (its when false)")]
    runs = by_case[("conditional 3 steps", "send-notification runs (its when true)")]
    assert skipped["transitions"] == runs["transitions"] == 5
