"""Lazy imports of the optional environment suites (gymnax, brax, jumanji)."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The pip extra that installs each suite.
SUITE_EXTRAS = {"gymnax": "gymnax", "brax": "brax", "jumanji": "jumanji"}


def import_suite(suite: str) -> ModuleType:
    """Imports an environment suite, or explains which extra installs it.

    Args:
        suite: one of ``"gymnax"``, ``"brax"``, ``"jumanji"``.

    Returns:
        The imported top-level module (for brax: ``brax.envs``).

    Raises:
        ImportError: if the suite is not installed; the message names the extra.

    >>> gymnax = import_suite("gymnax")
    """
    if suite not in SUITE_EXTRAS:
        raise ValueError(f"suite must be one of {sorted(SUITE_EXTRAS)} (got suite={suite!r})")
    module = "brax.envs" if suite == "brax" else suite
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{suite} environments need the optional dependency {suite!r}, which is not "
            f"installed ({error}). Install it with: "
            f'pip install "realax-tasks[{SUITE_EXTRAS[suite]}]"'
        ) from error


def suite_available(suite: str) -> bool:
    """Whether ``suite`` can be imported (without raising)."""
    try:
        import_suite(suite)
    except ImportError:
        return False
    return True
