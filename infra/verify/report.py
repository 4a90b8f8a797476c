"""`saga verify`'s output: a table for people, JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from infra.text_table import format_table
from infra.verify.plan import Skipped
from infra.verify.runner import Result


def text(saga_id: str, results: Sequence[Result], skipped: Sequence[Skipped]) -> str:
    rows = [[("pass" if r.passed else "FAIL"), r.case.name, _expected(r), r.status or "-",
             f"{r.seconds:.0f}s", "; ".join(r.problems)] for r in results]
    lines = [format_table(rows, ["", "case", "expected", "ended", "took", "problems"],
                          rule=True)]
    lines += [f"skipped {s.step_id}: {s.reason}" for s in skipped]
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{saga_id}: {len(results) - failed} of {len(results)} cases passed")
    return "\n".join(lines)


def junit(saga_id: str, results: Sequence[Result]) -> str:
    suite = ET.Element("testsuite", name=f"saga verify {saga_id}", tests=str(len(results)),
                       failures=str(sum(1 for r in results if not r.passed)),
                       time=f"{sum(r.seconds for r in results):.1f}")
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=saga_id, name=result.case.name,
                             time=f"{result.seconds:.1f}")
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.problems[0])
            failure.text = "\n".join([f"execution {result.execution_id}", *result.problems])
    return ET.tostring(suite, encoding="unicode")


def _expected(result: Result) -> str:
    return " -> ".join([result.case.expected, *(f"{a}: {s}" for a, s in result.case.then)])
