"""MuJoCo Playground environments behind the :class:`~realax.tasks.Env` interface.

The package (``pip install playground``, module ``mujoco_playground``) takes seconds to
import, so nothing here imports it until a Playground environment is built: the listing uses
the names below, and the menagerie check finds the package's folder without importing it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from . import _frames
from ._env import Env, EnvSpec, ObsFn, box_bounds, check_episode_length, check_no_env_kwargs
from ._quiet import quiet
from ._suites import SuiteAdapter, check_name, import_suite, register_suite

#: MJX implementations Playground environments accept as ``impl``. ``"jax"`` (realax's
#: default) compiles in seconds on CPU; ``"warp"`` (Playground's default) first builds warp
#: kernels, about a minute on CPU.
PLAYGROUND_IMPLS = ("jax", "warp")

# The names playground 0.2 registers (mujoco_playground.registry.ALL_ENVS), used to list and
# resolve names while the package is not imported; once it is, its live registries are read.
_DM_CONTROL = (
    "AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance",
    "CartpoleBalanceSparse", "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun",
    "FingerSpin", "FingerTurnEasy", "FingerTurnHard", "FishSwim", "HopperHop", "HopperStand",
    "HumanoidStand", "HumanoidWalk", "HumanoidRun", "PendulumSwingup", "PointMass",
    "ReacherEasy", "ReacherHard", "SwimmerSwimmer6", "WalkerRun", "WalkerStand", "WalkerWalk",
)  # fmt: skip
_MENAGERIE = (  # locomotion and manipulation: their robots come from mujoco_menagerie
    "ApolloJoystickFlatTerrain", "BarkourJoystick", "BerkeleyHumanoidJoystickFlatTerrain",
    "BerkeleyHumanoidJoystickRoughTerrain", "G1JoystickFlatTerrain", "G1JoystickRoughTerrain",
    "Go1JoystickFlatTerrain", "Go1JoystickRoughTerrain", "Go1Getup", "Go1Handstand",
    "Go1Footstand", "H1InplaceGaitTracking", "H1JoystickGaitTracking", "Op3Joystick",
    "SpotFlatTerrainJoystick", "SpotGetup", "SpotJoystickGaitTracking", "T1JoystickFlatTerrain",
    "T1JoystickRoughTerrain", "AlohaHandOver", "AlohaSinglePegInsertion", "PandaPickCube",
    "PandaPickCubeOrientation", "PandaPickCubeCartesian", "PandaOpenCabinet",
    "PandaRobotiqPushCube", "LeapCubeReorient", "LeapCubeRotateZAxis", "AeroCubeRotateZAxis",
)  # fmt: skip
_MENAGERIE_URL = "https://github.com/deepmind/mujoco_menagerie.git"
_RENDER_SIZE = (240, 320)  # height, width of rendered frames


def _dm_control_names() -> tuple[str, ...]:
    """The dm_control suite names: live when the package is imported, else playground 0.2's."""
    if "mujoco_playground" in sys.modules:
        return tuple(sys.modules["mujoco_playground"].dm_control_suite.ALL_ENVS)
    return _DM_CONTROL


def menagerie_path() -> Path | None:
    """Where Playground looks for mujoco_menagerie (``None``: playground is not installed);
    found without importing the package."""
    try:
        spec = importlib.util.find_spec("mujoco_playground")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "external_deps" / "mujoco_menagerie"


def _clone_command() -> str:
    """The commands that put mujoco_menagerie where Playground looks for it, at the commit
    Playground pins (called once the package is imported)."""
    from mujoco_playground._src import mjx_env

    path = mjx_env.MENAGERIE_PATH
    return (
        f"git clone {_MENAGERIE_URL} {path} && git -C {path} checkout "
        f"{mjx_env.MENAGERIE_COMMIT_SHA}"
    )


def _menagerie_reason(name: str) -> str | None:
    """Why ``name`` cannot be built without the network (its robot models are absent)."""
    if name in _dm_control_names():
        return None
    path = menagerie_path()
    if path is None or path.exists():
        return None
    return (
        f"Playground environment {name!r} loads its robot model from mujoco_menagerie, which "
        f"is not at {path}; Playground clones it from {_MENAGERIE_URL} on first use, which "
        f"needs the network. Build it once while online, or clone it there yourself: git "
        f"clone {_MENAGERIE_URL} {path}"
    )


def _load(name: str, impl: str, overrides: dict[str, Any]) -> Any:
    """``mujoco_playground.registry.load`` with ``impl`` set, and a failed menagerie clone
    turned into an error that says what to clone where."""
    pg = import_suite("playground")
    check_name("playground", name)
    config = pg.registry.get_default_config(name)
    if "impl" in config:
        overrides = {"impl": impl, **overrides}
    if name in _dm_control_names():
        with quiet():
            return pg.registry.load(name, config_overrides=overrides)
    printed = io.StringIO()  # Playground's "Downloading..." lines and clone progress bar
    try:
        with quiet(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            return pg.registry.load(name, config_overrides=overrides)
    except (subprocess.CalledProcessError, OSError) as error:
        raise RuntimeError(
            f"Playground environment {name!r} needs the robot models of mujoco_menagerie, "
            f"which are not installed, and Playground could not clone them ({error}). Run, "
            f"with network access: {_clone_command()}"
        ) from None


def state_observation(obs: Any) -> Any:
    """The policy's observation of a Playground environment: the array itself, or the
    ``"state"`` entry of a dict observation (the locomotion environments also return a
    ``"privileged_state"`` for asymmetric critics)."""
    if isinstance(obs, Mapping) and "state" in obs:
        return obs["state"]
    return obs


def _raw_key(key: jax.Array) -> jax.Array:
    """Playground keeps its key in ``state.info``: a raw ``uint32`` key, so recorded and
    checkpointed states hold plain arrays."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


class PlaygroundEnv(Env):
    """A MuJoCo Playground environment (by name or instance) as an :class:`Env`.

    Playground environments have no episode limit in ``step``; ``episode_length`` (default:
    the environment's config, 1000 for the dm_control suite) sets ``max_steps``, after which
    ``truncated`` is true. ``terminated`` is Playground's ``done`` (the dm_control suite
    sets it only when the physics diverges). A dict observation gives its ``"state"`` entry
    (:func:`state_observation`) unless ``obs_fn`` is given. Actions are bounded by the
    actuators' control range.

    The locomotion and manipulation environments load robot models from mujoco_menagerie,
    which Playground clones on first use; offline, building one raises a ``RuntimeError``
    with the ``git clone`` command to run.

    Args:
        env: a Playground name (``realax.tasks.registered_names("playground")``) or a
            ``mujoco_playground.MjxEnv`` instance.
        impl: the MJX implementation when ``env`` is a name, one of ``PLAYGROUND_IMPLS``
            (default ``"jax"``: compiles in seconds on CPU, where ``"warp"`` builds kernels
            for about a minute).
        episode_length: the episode limit (default: the environment's ``episode_length``).
        config_overrides: other entries of the environment's config (``impl`` excepted).
        render_size: ``(height, width)`` of rendered frames.
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: map from the raw observation to one array.

    >>> env = PlaygroundEnv("CartpoleBalance")  # doctest: +SKIP
    >>> env.obs_shape, env.action_dims, env.max_steps  # doctest: +SKIP
    ((5,), 1, 1000)
    """

    suite = "playground"

    def __init__(
        self,
        env: Any,
        *,
        impl: str = "jax",
        episode_length: int | None = None,
        config_overrides: dict[str, Any] | None = None,
        render_size: tuple[int, int] = _RENDER_SIZE,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
    ):
        if episode_length is not None:
            check_episode_length(episode_length)
        _check_render_size(render_size)
        overrides = dict(config_overrides or {})
        if isinstance(env, str):
            if impl not in PLAYGROUND_IMPLS:
                raise ValueError(f"impl must be one of {PLAYGROUND_IMPLS} (got impl={impl!r})")
            if "impl" in overrides:
                raise ValueError(
                    "PlaygroundEnv: pass the MJX implementation as impl=, not in "
                    f"config_overrides (got config_overrides={overrides})"
                )
            name = env
            env = _load(name, impl, overrides)
        else:
            check_no_env_kwargs("playground", overrides)
            name = type(env.unwrapped).__name__
        limit = getattr(getattr(env, "_config", None), "episode_length", 1000)
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn or state_observation)
        self.env = env
        self.episode_length = int(episode_length if episode_length is not None else limit)
        self.render_size = tuple(render_size)

    def _build_spec(self) -> EnvSpec:
        action_dims = int(self.env.action_size)
        bounds = box_bounds(-1.0, 1.0, (action_dims,))
        model = self.env.mj_model
        ctrl = jnp.asarray(model.actuator_ctrlrange, jnp.float32)
        limited = jnp.asarray(model.actuator_ctrllimited, bool)
        usable = ctrl.shape == (action_dims, 2) and bool(jnp.all(limited))
        if usable and bool(jnp.all(ctrl[:, 0] < ctrl[:, 1])):
            bounds = ctrl[:, 0], ctrl[:, 1]
        return self._make_spec(
            action_dims=action_dims,
            action_shape=(action_dims,),
            discrete=False,
            bounds=bounds,
            max_steps=self.episode_length,
        )

    def _reset(self, key):
        state = self.env.reset(_raw_key(key))
        return state.obs, state

    def _step(self, key, inner, action):
        del key  # Playground environments carry their own key in state.info
        state = self.env.step(inner, action)
        info = {"metrics": state.metrics}
        return state.obs, state, state.reward, state.done > 0, jnp.zeros((), bool), info


def _check_render_size(size: Any) -> None:
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(
            f"render_size must be (height, width), two positive ints (got render_size={size!r})"
        )


def playground_frames(env: Any, states: list[Any]) -> list[Any]:
    """Frames of Playground states drawn by MuJoCo's renderer from each state's positions
    (``qpos``, ``qvel``, mocap bodies), with the model's free camera."""
    import numpy as np

    # as _frames.check_brax: mujoco comes with the suite (playground requires it)
    mujoco = _frames._require("mujoco", "mujoco", "playground", "rendering Playground")
    model = env.unwrapped.mj_model
    height, width = env.render_size
    renderer = mujoco.Renderer(model, height=height, width=width)
    data = mujoco.MjData(model)
    frames = []
    try:
        for state in states:
            data.qpos[:], data.qvel[:] = state.data.qpos, state.data.qvel
            if model.nmocap:
                data.mocap_pos[:], data.mocap_quat[:] = state.data.mocap_pos, state.data.mocap_quat
            mujoco.mj_forward(model, data)
            renderer.update_scene(data)
            frames.append(np.array(renderer.render(), dtype=np.uint8))
    finally:
        renderer.close()
    return frames


def _names(module: Any) -> list[str]:
    if module is None:
        return [*_DM_CONTROL, *_MENAGERIE]
    suites = (module.dm_control_suite, module.locomotion, module.manipulation)
    return [name for suite in suites for name in suite.ALL_ENVS]


register_suite(
    SuiteAdapter(
        name="playground",
        module="mujoco_playground",
        distribution="playground",
        names=_names,
        make=PlaygroundEnv,
        download=_menagerie_reason,
        static_names=True,
        render=playground_frames,
        check_render=_frames.check_brax,  # the same MuJoCo OpenGL check
        slow_describe=True,  # 1-50 s an environment: reading its spec traces the MJX model
    )
)
