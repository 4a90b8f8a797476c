"""`saga run --input FILE` (and `sagas create -f FILE`) with a file that cannot be the body:
exit 2 with one line naming the file and the problem, never a traceback (row 16). Nothing is
sent: the API given is one nothing listens on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from infra.cli import main
from infra.exit_codes import Exit

NOWHERE = ["--api", "http://127.0.0.1:9"]


@pytest.mark.parametrize(("name", "text", "says"), [
    ("bad.yaml", "customer_id: [1, 2\namount: : x\n", "is not valid YAML: expected ',' or ']'"),
    ("bad.yml", "a: 'unterminated\n", "is not valid YAML: found unexpected end of stream"),
    ("bad.json", "customer_id: x\n", "is not valid JSON: Expecting value (line 1, column 1)"),
    ("trailing.json", '{"a": 1} x', "is not valid JSON: Extra data (line 1, column 10)"),
    ("when.yaml", "ship_on: 2026-12-05\n", "holds a value JSON cannot carry"),
    ("nan.yaml", "amount: .nan\n", "holds a value JSON cannot carry"),
])
def test_a_malformed_input_file_is_named_with_its_problem_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
        says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert main(["run", "pay", "--input", str(path), *NOWHERE]) == Exit.REFUSED == 2
    err = capsys.readouterr().err
    assert err.startswith(f"saga: {path} {says}"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_missing_or_binary_file_is_named_too(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    assert main(["run", "pay", "--input", str(missing), *NOWHERE]) == Exit.REFUSED
    assert capsys.readouterr().err == f"saga: cannot read {missing}: No such file or directory\n"
    binary = tmp_path / "input.json"
    binary.write_bytes(b"\xff\xfe\x00")
    assert main(["sagas", "create", "-f", str(binary), *NOWHERE]) == Exit.REFUSED
    assert capsys.readouterr().err == f"saga: {binary} is not UTF-8 text\n"


def test_stdin_is_named_stdin(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("{not json"))
    assert main(["run", "pay", "--input", "-", *NOWHERE]) == Exit.REFUSED
    assert capsys.readouterr().err.startswith("saga: stdin is not valid JSON: ")
