"""XLand-MiniGrid (``xminigrid``) environments behind the :class:`~realax.tasks.Env`
interface: its registered environments, hand-made rulesets and (downloaded) benchmark
rulesets; frames by xminigrid's own ``render``."""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from . import _frames
from ._env import Env, EnvSpec, ObsFn, check_no_env_kwargs
from ._suites import EnvInfo, SuiteAdapter, check_name, import_suite, register_suite

if TYPE_CHECKING:
    import numpy as np


def flat_float(obs: Any) -> jax.Array:
    """A grid observation as one float32 vector (the MLP policies' input).

    >>> flat_float(jnp.ones((5, 5, 2), jnp.uint8)).shape
    (50,)
    """
    return jnp.ravel(obs).astype(jnp.float32)


def benchmark_ruleset(benchmark: str, ruleset_id: int) -> Any:
    """Ruleset ``ruleset_id`` of an xminigrid benchmark that is already on disk.

    Raises, without touching the network, when the benchmark's file is not there: xminigrid
    downloads benchmarks from the Hugging Face hub.
    """
    benchmarks = import_suite("xminigrid").benchmarks
    known = benchmarks.registered_benchmarks()
    if benchmark not in known:
        raise ValueError(f"benchmark must be one of {known} (got benchmark={benchmark!r})")
    path = os.path.join(benchmarks.DATA_PATH, benchmarks.NAME2HFFILENAME[benchmark])
    if not os.path.exists(path):
        raise RuntimeError(
            f"the xminigrid benchmark {benchmark!r} is downloaded from the Hugging Face hub "
            f"(dataset {benchmarks.HF_REPO_ID}) into {benchmarks.DATA_PATH}, and {path} is not "
            f"there; run xminigrid.load_benchmark({benchmark!r}) once while online (or set "
            "XLAND_MINIGRID_DATA to a folder holding it), or pass a hand-made ruleset="
        )
    loaded = benchmarks.load_benchmark_from_path(path)
    if not 0 <= int(ruleset_id) < loaded.num_rulesets():
        raise ValueError(
            f"ruleset_id must be in [0, {loaded.num_rulesets()}) for benchmark {benchmark!r} "
            f"(got ruleset_id={ruleset_id!r})"
        )
    return loaded.get_ruleset(int(ruleset_id))


class XMinigridEnv(Env):
    """An XLand-MiniGrid environment (by id or instance) as an :class:`Env`.

    Observations are the agent's view (``view_size x view_size x 2``: tile and colour ids)
    flattened to float32 (:func:`flat_float`; ``obs_fn`` replaces it, e.g. to keep the grid
    for a CNN). Six actions. ``terminated``: the goal was reached; ``truncated``: the
    environment's ``max_steps``. XLand environments take a ruleset: a hand-made
    ``xminigrid.types.RuleSet`` (``ruleset=``) or one of a benchmark (``benchmark=``,
    ``ruleset_id=``), which must have been downloaded first (the error says how).

    Args:
        env: an xminigrid id (``xminigrid.registered_environments()``) or an xminigrid
            ``Environment`` instance (then ``env_params`` are needed, or its defaults).
        env_params: xminigrid ``EnvParams`` (default: the registered ones).
        ruleset: a ``RuleSet`` for an ``XLand-MiniGrid-*`` environment.
        benchmark: an xminigrid benchmark name (``"trivial-21k"``, ...), already on disk.
        ruleset_id: which ruleset of ``benchmark``.
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: raw observation -> array (default :func:`flat_float`).
        **env_kwargs: ``EnvParams`` fields passed to ``xminigrid.make`` (``max_steps=``).

    >>> env = XMinigridEnv("MiniGrid-Empty-5x5")
    >>> env.obs_shape, env.action_dims, env.max_steps
    ((98,), 6, 100)
    """

    suite = "xminigrid"

    def __init__(
        self,
        env: Any,
        env_params: Any = None,
        *,
        ruleset: Any = None,
        benchmark: str | None = None,
        ruleset_id: int = 0,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        xminigrid = import_suite("xminigrid")
        if isinstance(env, str):
            check_name("xminigrid", env)
            name = env
            env, default_params = xminigrid.make(env, **env_kwargs)
        else:
            check_no_env_kwargs("xminigrid", env_kwargs)
            name = type(env).__name__
            default_params = env.default_params()
        params = default_params if env_params is None else env_params
        if ruleset is not None and benchmark is not None:
            raise ValueError("pass ruleset= or benchmark= (with ruleset_id=), not both")
        if benchmark is not None:
            ruleset = benchmark_ruleset(benchmark, ruleset_id)
        if ruleset is not None:
            if not hasattr(params, "ruleset"):
                raise ValueError(
                    f"xminigrid environment {name!r} takes no ruleset (only the XLand-MiniGrid-* "
                    f"environments do); got ruleset={ruleset!r}"
                )
            params = params.replace(ruleset=ruleset)
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn or flat_float)
        self.env = env
        self.env_params = params

    def _build_spec(self) -> EnvSpec:
        return self._make_spec(
            action_dims=int(self.env.num_actions(self.env_params)),
            action_shape=(),
            discrete=True,
            bounds=None,
            max_steps=int(self.env_params.max_steps),
        )

    def _reset(self, key):
        timestep = self.env.reset(self.env_params, key)
        return timestep.observation, timestep

    def _step(self, key, inner, action):
        del key  # xminigrid keeps its key in the state
        timestep = self.env.step(self.env_params, inner, action)
        last = timestep.last()
        terminated = jnp.logical_and(last, timestep.discount == 0)
        truncated = jnp.logical_and(last, timestep.discount != 0)
        return timestep.observation, timestep, timestep.reward, terminated, truncated, {}


def _describe(name: str) -> EnvInfo:
    """Sizes from the environment's parameters, without tracing it."""
    env, params = import_suite("xminigrid").make(name)
    size = 1
    for d in env.observation_shape(params):
        size *= int(d)
    return EnvInfo(name, "xminigrid", (size,), int(env.num_actions(params)), True)


def _names(xminigrid: ModuleType) -> list[str]:
    return list(xminigrid.registered_environments())


# ---------------------------------------------------------------------------- frames
def check_xminigrid(env: Any) -> None:
    """Raises if the GIF cannot be written (xminigrid draws its frames with numpy)."""
    _frames._require("PIL", "pillow", "render", f"rendering xminigrid {env.spec.name!r}")


def xminigrid_frames(env: Any, states: list[Any]) -> list[np.ndarray]:
    """Frames of xminigrid timesteps, drawn by the environment's own ``render``."""
    import numpy as np

    params = env.env_params.replace(render_mode="rgb_array")
    return [np.asarray(env.unwrapped.render(params, s), np.uint8) for s in states]


register_suite(
    SuiteAdapter(
        name="xminigrid",
        names=_names,
        make=XMinigridEnv,
        describe=_describe,
        render=xminigrid_frames,
        check_render=check_xminigrid,
    )
)
