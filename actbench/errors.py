"""Errors a user can fix: the CLI prints them on one line and exits with code 2."""


class ActbenchError(Exception):
    """Bad input (config, data, run directory): reported as one line, exit code 2."""

    exit_code = 2


class RunFailed(ActbenchError):
    """A run that had started could not go on (a write failed, the disk is full): not bad
    input, so the command exits 1, not 2."""

    exit_code = 1
