"""actbench: which activation should this network use? Train, compare and plot activations.

`load_runs`, `load_metrics`, `load_slopes` and `load_act_params` return pandas DataFrames;
pandas is imported only when one is first used, so `import actbench` (and the CLI's --help)
stays light."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["__version__", "load_act_params", "load_metrics", "load_runs", "load_slopes"]


def __getattr__(name: str) -> Any:
    if name in ("load_runs", "load_metrics", "load_slopes", "load_act_params"):
        from actbench import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'actbench' has no attribute {name!r}")
