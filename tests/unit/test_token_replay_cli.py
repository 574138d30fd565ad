"""`token-replay`: one command that hands its arguments to the documented command lines unchanged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from enrichment.cli import triage
from playbooks.cli import run
from playbooks.cli.token_replay import main
from sample_tenant import cli as sample_cli


@pytest.mark.parametrize(
    ("argv", "direct"),
    [
        (["triage", "--data", "x", "--user", "a@b.example", "--at", "yesterday"], triage.main),
        (["triage", "--user", "a@b.example"], triage.main),
        (["run", "--incident", "missing.json", "--data", "x", "--dry-run", "--out", "o"], run.main),
        (["sample", "--out", "o", "--days", "1"], lambda a: sample_cli.main(a[1:])),
    ],
)
def test_bad_input_gets_the_commands_own_exit_status_and_line(
    argv: list[str], direct: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each subcommand answers bad input exactly as its `python -m` form: same exit status, same stdout and stderr."""
    code = main(argv)
    mine = capsys.readouterr()
    assert code == direct(argv)
    theirs = capsys.readouterr()
    assert (mine.out, mine.err) == (theirs.out, theirs.err)
    assert code == 2
    assert mine.err.count("\n") == 1


@pytest.mark.parametrize(("argv", "what"), [([], "a command is required"), (["triage2"], "unknown command 'triage2'")])
def test_no_or_unknown_command_is_bad_input(argv: list[str], what: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 with one line on stderr naming the commands."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {what}; choose one of triage, run, sample (token-replay --help)\n"


def test_help_lists_each_command_with_its_python_m_form(capsys: pytest.CaptureFixture[str]) -> None:
    """`token-replay --help` exits 0 and says which `python -m` command each subcommand is."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("python -m enrichment triage", "python -m playbooks run", "python -m sample_tenant"):
        assert line in out
