"""Documentation that cannot drift: every command, option and config key is in the README."""

from __future__ import annotations

import re

import typer

from actbench import config
from actbench.cli import app

from .conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_command_and_option_is_documented() -> None:
    missing = []

    def visit(command: typer.core.TyperCommand, path: str) -> None:
        if path not in README:
            missing.append(path)
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help" and opt not in README:
                    missing.append(f"{path} {opt}")
        for name, sub in getattr(command, "commands", {}).items():
            visit(sub, f"{path} {name}")

    visit(typer.main.get_command(app), "actbench")
    assert missing == []


def test_every_config_key_is_in_the_reference() -> None:
    reference = README.split("Every key, with its default:", 1)[1].split("```", 2)[1]
    documented = set(re.findall(r"^\s*([a-z_]+):", reference, flags=re.M))
    keys = {k.split(".")[-1] for k in config.flatten(config.Config().model_dump())}
    assert keys - documented == set()
    assert set(config.SECTIONS) <= documented


def test_every_optimizer_and_schedule_is_in_the_reference() -> None:
    """The reference's one-line lists are the registries' names, in order."""
    from actbench import registry

    assert f"name: sgd           # {' | '.join(registry.OPTIMIZERS)}" in README
    assert f"schedule: none      # {' | '.join(registry.SCHEDULES)} (" in README
