"""
`token-replay`: the one command a `pip install .` (or `pipx install .`) puts on the PATH.

Each subcommand is the documented command line, unchanged: `token-replay triage ARGS` is
`python -m enrichment triage ARGS`, `token-replay run ARGS` is `python -m playbooks run ARGS` and
`token-replay sample ARGS` is `python -m sample_tenant ARGS`, with the same output, files and exit
status. Only the chosen command is imported, so `triage` never loads the Graph SDK or the Functions
libraries.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from common.command import EXIT_BAD_INPUT, EXIT_OK

USAGE = """\
usage: token-replay {triage,run,sample} ...

  triage  evidence, score and verdict for users around a time   (= python -m enrichment triage)
  run     enrich one incident as the Function App would, to files (= python -m playbooks run)
  sample  write a deterministic sample tenant's exports           (= python -m sample_tenant)

`token-replay COMMAND --help` lists a command's options."""


def _triage(argv: list[str]) -> int:
    from enrichment.cli.triage import main

    return main(argv)


def _run(argv: list[str]) -> int:
    from playbooks.cli.run import main

    return main(argv)


def _sample(argv: list[str]) -> int:
    from sample_tenant.cli import main

    return main(argv[1:])  # `python -m sample_tenant` has no subcommand word


COMMANDS: dict[str, Callable[[list[str]], int]] = {"triage": _triage, "run": _run, "sample": _sample}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the named command; none, or an unknown one, is bad input: exit 2 with one line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return EXIT_OK
    command = COMMANDS.get(args[0]) if args else None
    if command is None:
        what = f"unknown command {args[0]!r}" if args else "a command is required"
        print(f"error: {what}; choose one of {', '.join(COMMANDS)} (token-replay --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
