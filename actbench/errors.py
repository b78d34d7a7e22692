"""Errors a user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations

from typing import Any


class ActbenchError(Exception):
    """Bad input (config, data, run directory): reported as one line, exit code 2."""

    exit_code = 2


class RunFailed(ActbenchError):
    """A run that had started could not go on (a write failed, the disk is full): not bad
    input, so the command exits 1, not 2."""

    exit_code = 1


class ActbenchWarning(UserWarning):
    """Something the user should know that does not stop the command (a damaged cache)."""


def one_line_warnings() -> None:
    """Show ActbenchWarnings as 'warning: <message>' on one line of stderr (the CLI and its
    worker processes), other warnings as Python shows them."""
    import sys
    import warnings

    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, ActbenchWarning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            shown(message, category, *args, **kw)

    if getattr(shown, "__name__", "") != "show":
        warnings.showwarning = show
