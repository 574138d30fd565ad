"""
How the command lines (`python -m enrichment triage`, `python -m playbooks run`, `python -m
playbooks.permissions`, `python -m sample_tenant`) end: one exit status, at most one line on stderr.

Shared so both commands keep the same contract: 0 on success (a user with no sign-ins is a result),
2 with one line for bad input (flags, files, times, settings), 1 with the error and what to check when
a service failed. No traceback for any of these: they are the user's to fix, not ours.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

from common.errors import InputError, SettingsError, UpstreamError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are bad input (`InputError`: exit 2, one line), not its own exit and format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(message)


def run_command(action: Callable[[], object], err: TextIO) -> int:
    """Run `action` and turn our errors into the exit status and the one line the contract promises."""
    try:
        action()
    except (InputError, SettingsError) as error:
        err.write(f"error: {error}\n")
        return EXIT_BAD_INPUT
    except UpstreamError as error:
        err.write(f"error: {error}" + (f" ({error.hint})" if error.hint else "") + "\n")
        return EXIT_FAILED
    return EXIT_OK
