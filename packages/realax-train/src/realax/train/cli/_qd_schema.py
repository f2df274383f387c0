"""``realax qd``: its configuration and sub-parser (standard library only)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from ._config import NONNEGATIVE, POSITIVE, POSITIVE_FLOAT, STRING, CliError, choice, flag
from ._schema import RunConfig, key

EMITTERS = ("map_elites", "cma_me", "cma_opt", "cma_rnd")
DESCRIPTORS = ("mean_obs", "final_obs")


def _float(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if isinstance(value, bool) or not math.isfinite(out):
        raise CliError(f"{flag(name)} must be a number (got {value!r}); e.g. {flag(name)} 1.5")
    return out


def parse_floats(name: str, text: str) -> list[float]:
    """``"0.1,-2"`` -> ``[0.1, -2.0]`` (a CliError naming the flag otherwise)."""
    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise CliError(
            f"{flag(name)} must be comma-separated numbers (got {text!r}); e.g. "
            f"{flag(name)} -2.4,-0.21:2.4,0.21"
        ) from None


@dataclasses.dataclass(frozen=True)
class QDConfig(RunConfig):
    """``realax qd [TASK]``: quality-diversity (MAP-Elites / CMA-ME) on the maze or an env."""

    command: ClassVar[str] = "qd"
    total_key: ClassVar[str] = "iterations"

    env: str | None = key(
        "maze",
        STRING,
        "the task: maze (a 2-D point robot; descriptor: its final x, y) or an environment name "
        "(descriptor: --descriptor of its observations)",
        "TASK",
    )
    emitter: str = key(
        "map_elites", choice(*EMITTERS), "QD emitter", "{" + ",".join(EMITTERS) + "}"
    )
    iterations: int = key(100, POSITIVE, "QD iterations", "N")
    batch_size: int = key(64, POSITIVE, "members evaluated per iteration", "N")
    grid: int = key(20, POSITIVE, "cells per descriptor of the Euclidean grid", "N")
    cvt: int | None = key(None, POSITIVE, "N CVT cells instead of the grid", "N")
    maze_steps: int = key(50, POSITIVE, "steps of a maze episode (the genome: 2 per step)", "N")
    descriptor: str | None = key(
        None,
        choice(*DESCRIPTORS),
        "behaviour descriptor of an environment task (default: per environment)",
        "{" + ",".join(DESCRIPTORS) + "}",
    )
    obs_indices: str | None = key(
        None, STRING, "observation entries of the descriptor, e.g. 0,2", "I,J"
    )
    bounds: str | None = key(
        None, STRING, "descriptor bounds MIN:MAX, e.g. -2.4,-0.21:2.4,0.21", "LO:HI"
    )
    width: int = key(16, POSITIVE, "hidden width of an environment task's MLP policy", "W")
    depth: int = key(1, NONNEGATIVE, "hidden layers of that policy", "D")
    init_std: float = key(1.0, POSITIVE_FLOAT, "std of the random initial population", "STD")
    iso_sigma: float = key(0.05, POSITIVE_FLOAT, "MAP-Elites' isotropic variation std", "STD")
    line_sigma: float = key(0.1, POSITIVE_FLOAT, "MAP-Elites' line variation std", "STD")
    sigma_g: float = key(0.5, POSITIVE_FLOAT, "CMA-ME's initial step size", "STD")
    qd_offset: float | None = key(
        None, _float, "added to each elite's fitness in the QD score (maze: 1.5, else 0)", "X"
    )
    devices: int = key(1, POSITIVE, "split each batch over N devices", "N")


def add_parser(sub: Any, add_keys: Any, positional: Any) -> None:
    """The ``qd`` sub-parser (``add_keys`` / ``positional``: the helpers of ``_parser``)."""
    from ._schema import keys_of

    p = sub.add_parser(
        "qd",
        help="quality-diversity search (MAP-Elites, CMA-ME on qdax)",
        description="Fill a repertoire of diverse, high-fitness solutions with MAP-Elites or "
        "CMA-ME; the run folder gets repertoire.png (the heat map) besides the files of evolve.",
    )
    positional(p, "env", "maze (default) or an environment name, e.g. CartPole-v1")
    add_keys(p, keys_of(QDConfig), skip=("env",))
