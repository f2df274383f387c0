"""Run configurations of the command line: defaults, config files, validation, config.toml.

A configuration is a flat dict whose keys mirror the command's long flags (``--eval-reps`` is
``eval_reps``; a config file may spell it ``eval-reps`` too). Values come from, in increasing
priority: the defaults below, a ``--config`` file (TOML or YAML), the flags given.
Standard library only (YAML support imports ``yaml`` lazily).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CliError",
    "Key",
    "check_config",
    "close_matches",
    "load_config_file",
    "write_toml",
]


class CliError(Exception):
    """A user error: printed as one line ``realax: error: ...``; the exit status is 2."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def close_matches(word: str, pool: list[str] | tuple[str, ...], n: int = 3) -> str:
    """``" Did you mean 'a', 'b'?"`` for the entries of ``pool`` close to ``word`` (or "")."""
    found = difflib.get_close_matches(word, list(pool), n=n, cutoff=0.5)
    if not found:
        lower = {p.lower(): p for p in pool}
        found = [lower[m] for m in difflib.get_close_matches(word.lower(), list(lower), n=n)]
    return f" Did you mean {', '.join(repr(f) for f in found)}?" if found else ""


# --------------------------------------------------------------------------- value checks


def _int(minimum: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise CliError(f"{flag(name)} must be an integer >= {minimum} (got {value!r})")
        return value

    return check


def _positive_float(name: str, value: Any) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise CliError(f"{flag(name)} must be a number > 0 (got {value!r}); e.g. {flag(name)} 0.1")
    return float(value)


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise CliError(f"{flag(name)} must be a non-empty string (got {value!r})")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    if not isinstance(value, bool):
        raise CliError(f"{flag(name)} must be true or false (got {value!r})")
    return value


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            hint = close_matches(str(value), choices) if isinstance(value, str) else ""
            raise CliError(
                f"{flag(name)} must be one of {', '.join(choices)} (got {value!r}).{hint}"
            )
        return value

    return check


@dataclasses.dataclass(frozen=True)
class Key:
    """One configuration key: default value, checker and help text."""

    default: Any
    check: Callable[[str, Any], Any] | None
    help: str
    metavar: str | None = None


#: configuration keys given as positional arguments, by the name ``--help`` shows them
POSITIONAL = {"algo": "ALGO", "env": "ENV"}


def flag(name: str) -> str:
    """The command-line flag of a configuration key; positional keys by their ``--help`` name.

    >>> flag("eval_reps"), flag("algo")
    ('--eval-reps', 'ALGO')
    """
    return POSITIONAL.get(name) or "--" + name.replace("_", "-")


POSITIVE = _int(1)
NONNEGATIVE = _int(0)
POSITIVE_FLOAT = _positive_float
STRING = _str
BOOL = _bool
choice = _choice


# --------------------------------------------------------------------------- files


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a flat TOML (``.toml``) or YAML (``.yaml``/``.yml``) configuration file.

    Keys may use dashes or underscores (``eval-reps`` or ``eval_reps``); nested tables are
    rejected (the configuration mirrors the flags, which are flat).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise CliError(f"--config {str(path)!r}: no such file")
    text = p.read_text()
    suffix = p.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise CliError(f"--config {str(path)!r} is not valid TOML: {e}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml comes with the cli extra
            raise CliError(
                'YAML configs need pyyaml: pip install "realax-train[cli]" (or use a .toml file)'
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0] if str(e) else repr(e)
            raise CliError(f"--config {str(path)!r} is not valid YAML: {first}") from None
        data = {} if data is None else data
    else:
        raise CliError(
            f"--config {str(path)!r}: unknown file type {p.suffix!r}; use a .toml, .yaml or "
            ".yml file"
        )
    if not isinstance(data, Mapping):
        raise CliError(
            f"--config {str(path)!r} must hold a table of key = value pairs "
            f"(got {type(data).__name__})"
        )
    out = {}
    for k, v in data.items():
        key = str(k).replace("-", "_")
        if isinstance(v, Mapping | list):
            raise CliError(
                f"--config {str(path)!r}: key {k!r} holds a {type(v).__name__}; the config is "
                "flat, with one value per flag (e.g. popsize = 64)"
            )
        out[key] = v
    return out


def check_config(
    values: Mapping[str, Any], keys: Mapping[str, Key], *, source: str, ignore: tuple = ()
) -> dict[str, Any]:
    """Validate ``values`` against ``keys``: unknown keys (with close matches), bad values."""
    out = {}
    for k, v in values.items():
        if k in ignore:
            continue
        if k not in keys:
            raise CliError(
                f"unknown key {k!r} in {source}.{close_matches(k, list(keys))} "
                f"Known keys: {', '.join(keys)}."
            )
        spec = keys[k]
        out[k] = v if (v is None or spec.check is None) else spec.check(k, v)
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))


def write_toml(path: Path, config: Mapping[str, Any], header: str = "") -> None:
    """Write a flat configuration as TOML (``None`` values are left out)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k} = {_toml_value(v)}" for k, v in config.items() if v is not None]
    path.write_text("\n".join(lines) + "\n")


def read_toml(path: Path) -> dict[str, Any]:
    """Read a configuration written by :func:`write_toml`."""
    return tomllib.loads(path.read_text())


#: trainer argument names and the flags that set them
_ARGUMENT_FLAGS = {
    "popsize": "--popsize",
    "eval_reps": "--eval-reps",
    "n_devices": "--devices",
    "num_envs": "--num-envs",
    "total_env_steps": "--steps",
    "buffer_size": "--buffer-size",
    "learning_starts": "--learning-starts",
    "eval_episodes": "--eval-episodes",
}


def in_flag_words(message: str) -> str:
    """A library error on one line, its argument names (``popsize=7``) said as the flags that
    set them (``--popsize 7``).

    >>> in_flag_words("popsize must be divisible by n_devices (got popsize=6,  n_devices=4)")
    'popsize must be divisible by n_devices (got --popsize 6, --devices 4)'
    """
    text = " ".join(str(message).split())
    for arg, opt in _ARGUMENT_FLAGS.items():
        text = re.sub(rf"\b{arg}=", f"{opt} ", text)
    return text
