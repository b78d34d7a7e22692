"""Errors a user can fix: the CLI prints them on one line and exits with code 2."""


class ActbenchError(Exception):
    """Bad input (config, data, run directory): reported as one line, exit code 2."""
