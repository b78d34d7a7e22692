"""User activations: classes registered by installed packages (entry point group
`actbench.activations`) or named by import path ("package.module:Class"). Listing reads
package metadata only; user code is imported by `load`, which runs only for an activation a
config names (train, sweep, evaluate), never to read or compare runs."""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import re
import sys
import typing
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from actbench.errors import ActbenchError

GROUP = "actbench.activations"
# A class by import path: dotted module, colon, dotted attribute.
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# What an entry point name may be (it also becomes part of run names).
ENTRY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")
# The constructor argument that receives the site's channel count (features for fc layers).
CHANNELS = "channels"
# A class attribute: the init gain for weights feeding the activation (a float, or a function
# of the config's keyword arguments), as activation-matched init needs it.
GAIN = "init_gain"
DEFAULT_GAIN = math.sqrt(2.0)  # ReLU's: what He init assumes when nothing else is known


@dataclass(frozen=True)
class Plugin:
    name: str
    target: str  # 'module:Class'
    dist: str  # the distribution that registered it, with its version


@functools.lru_cache(maxsize=1)
def entry_points() -> dict[str, Plugin]:
    """Installed entry points of the group, by name (first registration of a name wins)."""
    out: dict[str, Plugin] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ""
        if ENTRY_NAME.fullmatch(ep.name):
            out.setdefault(ep.name, Plugin(ep.name, ep.value, dist))
    return out


def is_import_path(name: str) -> bool:
    return bool(IMPORT_PATH.fullmatch(name))


def target(name: str) -> str:
    """'module:Class' of a user activation (an entry point's, or the import path itself)."""
    if is_import_path(name):
        return name
    plugin = entry_points().get(name)
    if plugin is None:
        raise ActbenchError(f"activation.name: no installed activation {name!r}")
    return plugin.target


def source(name: str) -> str:
    """Where a user activation comes from, for the run's summary: the class and package."""
    plugin = None if is_import_path(name) else entry_points().get(name)
    return f"{plugin.target} ({plugin.dist})" if plugin else target(name)


def load(name: str) -> type:
    """Import the class a user activation names; one-line ActbenchError if it cannot."""
    path = target(name)
    module, _, attr = path.partition(":")
    # The current folder is importable, as under `python -m actbench` (the console script
    # alone would not look there).
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # user code may raise anything on import
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise ActbenchError(f"activation.name: cannot import {path} ({why[:160]})") from None
    if not isinstance(obj, type):
        raise ActbenchError(f"activation.name: {path} is not a class")
    return obj


def _accepted(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        raise ActbenchError(f"activation.name: cannot read the signature of {cls!r}") from None
    named = {
        n: p
        for n, p in sig.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return named, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def takes_channels(cls: type) -> bool:
    """Whether the constructor accepts the site's channel count."""
    named, _ = _accepted(cls)
    return CHANNELS in named


def check_args(name: str, cls: type, args: dict[str, Any]) -> None:
    """One-line ActbenchError unless `args` fit the constructor: no unknown keyword, no
    missing required one, values of the annotated types."""
    from pydantic import TypeAdapter, ValidationError

    named, var_kw = _accepted(cls)
    allowed = ", ".join(n for n in named if n != CHANNELS) or "none"
    for key in args:
        if key == CHANNELS:
            raise ActbenchError(
                f"activation.{CHANNELS}: set by actbench (the channel count of each site)"
            )
        if key not in named and not var_kw:
            raise ActbenchError(
                f"activation.{key}: {name} takes no argument {key!r}; its arguments: {allowed}"
            )
    missing = [
        n for n, p in named.items() if p.default is p.empty and n not in args and n != CHANNELS
    ]
    if missing:
        raise ActbenchError(f"activation: {name} needs argument(s) {', '.join(missing)}")
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: the constructor checks its own values
        hints = {}
    for key, value in args.items():
        if key in hints:
            try:
                # strict for scalars ('2' is no number); a YAML list may fill a tuple
                TypeAdapter(hints[key]).validate_python(value, strict=not isinstance(value, list))
            except ValidationError as exc:
                msg = exc.errors(include_url=False)[0]["msg"].replace("Input should be", "")
                raise ActbenchError(
                    f"activation.{key}: {name} expects {msg.strip()}, got {value!r}"
                ) from None
            except Exception:  # an annotation pydantic cannot check
                pass


def failure(what: str, exc: BaseException) -> ActbenchError:
    """One line for user code that raised: what failed, then the exception, at most 240
    characters (a user's message can be any length)."""
    return ActbenchError(f"{what} ({type(exc).__name__}: {exc})"[:240])


def gain(cls: type, args: dict[str, Any]) -> float | None:
    """The class's declared init gain, or None when it declares none."""
    declared = getattr(cls, GAIN, None)
    if declared is None:
        return None
    try:
        value = declared(**args) if callable(declared) else declared
    except Exception as exc:  # user code may raise anything
        raise failure(f"activation: {cls.__name__}.{GAIN} failed", exc) from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ActbenchError(f"activation: {cls.__name__}.{GAIN} must be a positive number")
    return float(value)
