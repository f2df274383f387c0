"""Quality-diversity tasks: ``task(params, key[, data]) -> (fitness, descriptor, info)``.

:class:`MazeTask` is a 2-D point robot in a walled maze (pure JAX); :class:`DescriptorTask`
turns any :class:`EnvTask` into a QD task with a behaviour descriptor of its trajectory.
Both carry ``descriptor_bounds = (minval, maxval)``, which ``realax.train.QDTrainer`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._task import EnvTask

Array = jax.Array

__all__ = ["DEFAULT_MAZE_WALLS", "DescriptorTask", "MazeTask"]

#: interior walls ``(x0, y0, x1, y1)`` of the default maze in the unit square: start at the
#: bottom left, goal at the top left, two staggered walls in between (going straight up leads
#: into the first wall, so -distance to the goal is deceptive)
DEFAULT_MAZE_WALLS = (
    (0.0, 0.3, 0.7, 0.3),
    (0.3, 0.6, 1.0, 0.6),
    (0.3, 0.6, 0.3, 0.75),
)
_ARENA = ((0.0, 0.0, 1.0, 0.0), (1.0, 0.0, 1.0, 1.0), (1.0, 1.0, 0.0, 1.0), (0.0, 1.0, 0.0, 0.0))


def _cross(a: Array, b: Array) -> Array:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _hits(p: Array, q: Array, walls: Array) -> Array:
    """Fraction ``t`` in [0, 1] along ``p -> q`` of the first wall crossed per wall (inf: none)."""
    a, b = walls[:, :2], walls[:, 2:]
    r, s = q - p, b - a
    denom = _cross(r, s)
    safe = jnp.where(jnp.abs(denom) < 1e-12, 1.0, denom)
    t = _cross(a - p, s) / safe
    u = _cross(a - p, r) / safe
    hit = (jnp.abs(denom) >= 1e-12) & (t >= 0.0) & (t <= 1.0) & (u >= 0.0) & (u <= 1.0)
    return jnp.where(hit, t, jnp.inf)


class MazeTask:
    """A point robot in a 2-D maze: fitness ``-distance(final position, goal)``, descriptor
    the final ``(x, y)``.

    The arena is the unit square with its border and ``walls`` as segments. Each of
    ``n_steps`` steps moves the robot by ``max_speed * tanh(action)`` (a 2-D velocity); a move
    that would cross a wall is not made (the robot stays). Without ``policy`` the parameters
    are the open-loop actions, an array ``(n_steps, 2)`` (:attr:`params_like`); with
    ``policy`` (a flax module ``obs -> action (2,)``) the robot is closed-loop and sees its
    position and ``n_rays`` range sensors (distance to the nearest wall in fixed directions,
    up to ``ray_range``); its parameters come from :meth:`init_params`.

    ``task(params, key, data=None) -> (fitness, descriptor, info)`` with ``info`` holding
    ``distance`` and ``reached`` (within ``goal_radius``). The key is unused (deterministic).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.tasks import MazeTask
        >>> task = MazeTask(n_steps=20)
        >>> up = jnp.zeros((20, 2)).at[:, 1].set(3.0)  # straight up, into the first wall
        >>> fitness, descriptor, info = task(up, jax.random.key(0))
        >>> bool(descriptor[1] < 0.3), task.descriptor_bounds
        (True, ([0.0, 0.0], [1.0, 1.0]))
    """

    descriptor_bounds = ([0.0, 0.0], [1.0, 1.0])

    def __init__(
        self,
        *,
        n_steps: int = 100,
        walls: Sequence[Sequence[float]] = DEFAULT_MAZE_WALLS,
        start: Sequence[float] = (0.15, 0.1),
        goal: Sequence[float] = (0.15, 0.9),
        max_speed: float = 0.05,
        goal_radius: float = 0.05,
        policy: Any = None,
        n_rays: int = 8,
        ray_range: float = 0.3,
    ):
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"MazeTask: n_steps must be an int >= 1 (got n_steps={n_steps!r})")
        w = jnp.asarray(walls, jnp.float32).reshape(-1, 4) if len(walls) else jnp.zeros((0, 4))
        if not bool(jnp.all(jnp.isfinite(w))):
            raise ValueError("MazeTask: walls must be finite (x0, y0, x1, y1) segments")
        for name, point in (("start", start), ("goal", goal)):
            p = [float(v) for v in point]
            if len(p) != 2 or not all(0.0 < v < 1.0 for v in p):
                raise ValueError(
                    f"MazeTask: {name} must be a point (x, y) inside the unit square (got "
                    f"{name}={point!r})"
                )
        for name, value in (("max_speed", max_speed), ("goal_radius", goal_radius),
                            ("ray_range", ray_range)):  # fmt: skip
            if not float(value) > 0.0:
                raise ValueError(f"MazeTask: {name} must be > 0 (got {name}={value!r})")
        if policy is not None and not hasattr(policy, "apply"):
            raise TypeError(
                f"MazeTask: policy must be a flax module mapping obs to a 2-D action (got "
                f"{type(policy).__name__}); leave policy=None for open-loop action parameters."
            )
        self.n_steps, self.policy, self.n_rays = int(n_steps), policy, int(n_rays)
        self.walls = jnp.concatenate([w, jnp.asarray(_ARENA, jnp.float32)])
        self.start, self.goal = jnp.asarray(start, jnp.float32), jnp.asarray(goal, jnp.float32)
        self.max_speed, self.goal_radius = float(max_speed), float(goal_radius)
        self.ray_range = float(ray_range)
        angles = jnp.arange(self.n_rays) * (2 * jnp.pi / max(self.n_rays, 1))
        self._rays = jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)

    @property
    def params_like(self) -> Array:
        """Open-loop parameters: zeros ``(n_steps, 2)`` (pre-tanh velocities)."""
        return jnp.zeros((self.n_steps, 2), jnp.float32)

    @property
    def obs_size(self) -> int:
        """Size of a closed-loop policy's observation: position and the range sensors."""
        return 2 + self.n_rays

    def observe(self, pos: Array) -> Array:
        """Position and range-sensor readings (distances / ``ray_range``, 1: nothing seen)."""
        ends = pos + self.ray_range * self._rays
        t = jax.vmap(lambda q: jnp.min(_hits(pos, q, self.walls)))(ends)
        return jnp.concatenate([pos, jnp.minimum(t, 1.0)])

    def init_params(self, key: Array) -> Any:
        """The parameters to start from: the policy's variables, or :attr:`params_like`."""
        if self.policy is None:
            return self.params_like
        return self.policy.init(key, jnp.zeros((self.obs_size,), jnp.float32))

    def move(self, pos: Array, action: Array) -> Array:
        """One step from ``pos`` with velocity ``max_speed * tanh(action)``; blocked by walls."""
        target = pos + self.max_speed * jnp.tanh(jnp.asarray(action, jnp.float32))
        blocked = jnp.isfinite(jnp.min(_hits(pos, target, self.walls)))
        return jnp.where(blocked, pos, target)

    def positions(self, params: Any) -> Array:
        """The robot's positions after each step, ``(n_steps, 2)``."""

        def body(pos, action):
            if self.policy is not None:
                action = self.policy.apply(params, self.observe(pos))
            pos = self.move(pos, jnp.reshape(action, (2,)))
            return pos, pos

        actions = None if self.policy is not None else jnp.reshape(params, (self.n_steps, 2))
        _, path = jax.lax.scan(body, self.start, actions, length=self.n_steps)
        return path

    def __call__(self, params: Any, key: Array, data: Any = None) -> tuple[Array, Array, dict]:
        del key, data
        final = self.positions(params)[-1]
        distance = jnp.linalg.norm(final - self.goal)
        info = {"distance": distance, "reached": distance <= self.goal_radius}
        return -distance, final, info


def _last_valid(traj: dict) -> Array:
    idx = jnp.maximum(traj["episode_length"] - 1, 0)
    return traj["obs"][idx]


def _mean_valid(traj: dict) -> Array:
    valid = traj["valid"].astype(jnp.float32)[:, None]
    return jnp.sum(traj["obs"] * valid, 0) / jnp.maximum(jnp.sum(valid), 1.0)


_DESCRIPTORS: dict[str, Callable[[dict], Array]] = {
    "final_obs": _last_valid,
    "mean_obs": _mean_valid,
}


def _floats(bound: Any) -> list[float]:
    """One side of descriptor bounds (a number or one per descriptor) as a list of floats."""
    return [float(v) for v in (bound if hasattr(bound, "__iter__") else [bound])]


class DescriptorTask:
    """An :class:`EnvTask` as a QD task: the episode return and a behaviour descriptor.

    Runs ``task.rollout`` (the full trajectory) and returns ``(fitness, descriptor, info)``:
    the episode return, the descriptor, and ``info`` with ``episode_length`` (and
    ``obs_stats`` with observation normalisation, so ``init_data`` / ``update_data`` are the
    wrapped task's). ``descriptor`` is ``"final_obs"`` (the observation at the episode's last
    step), ``"mean_obs"`` (its mean over the episode), both restricted to ``obs_indices``, or a
    function of the trajectory dict (see :class:`EnvTask`) returning a 1-D array.

    Args:
        task: an :class:`EnvTask` (``GymnaxTask``, ``BraxTask``, ...) without ``data_fn``.
        descriptor: ``"final_obs"``, ``"mean_obs"`` or ``fn(trajectory) -> (d,)``.
        descriptor_bounds: ``(minval, maxval)``, one value per descriptor on each side.
        obs_indices: the observation entries a named descriptor keeps (default: all).

    Example:
        >>> import jax, realax.tasks as rt
        >>> env_task = rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2,
        ...                          discrete=True, width=8, depth=1), max_steps=50)
        >>> task = rt.DescriptorTask(env_task, "mean_obs", ([-2.4, -0.21], [2.4, 0.21]),
        ...                          obs_indices=(0, 2))  # cart position, pole angle
        >>> params = env_task.policy.init(jax.random.key(0), jax.numpy.zeros(4),
        ...                               env_task.policy.initialize(jax.random.key(0)),
        ...                               jax.random.key(0))
        >>> fitness, descriptor, info = task(params, jax.random.key(1))
        >>> descriptor.shape
        (2,)
    """

    def __init__(
        self,
        task: EnvTask,
        descriptor: str | Callable[[dict], Array],
        descriptor_bounds: tuple[Sequence[float], Sequence[float]],
        *,
        obs_indices: Sequence[int] | None = None,
    ):
        if not isinstance(task, EnvTask):
            raise TypeError(
                f"DescriptorTask: task must be a realax.tasks.EnvTask (got "
                f"{type(task).__name__}); build one with GymnaxTask(...) or BraxTask(...)."
            )
        if task.data_fn is not None:
            raise ValueError(
                "DescriptorTask: the wrapped task has a data_fn; the descriptor needs the full "
                "trajectory, so build the task without data_fn."
            )
        if isinstance(descriptor, str):
            if descriptor not in _DESCRIPTORS:
                raise ValueError(
                    f"DescriptorTask: unknown descriptor {descriptor!r} (expected one of "
                    f"{sorted(_DESCRIPTORS)} or a function of the trajectory)"
                )
            fn = _DESCRIPTORS[descriptor]
        elif callable(descriptor):
            fn = descriptor
        else:
            raise TypeError(
                f"DescriptorTask: descriptor must be a name or callable (got {descriptor!r})"
            )
        self.task, self.descriptor = task, descriptor
        self._fn = fn
        self.obs_indices = None if obs_indices is None else tuple(int(i) for i in obs_indices)
        lo, hi = (_floats(b) for b in descriptor_bounds)
        if len(lo) != len(hi) or not all(a < b for a, b in zip(lo, hi, strict=True)):
            raise ValueError(
                f"DescriptorTask: descriptor_bounds must be (minval, maxval) of equal length with "
                f"minval < maxval (got {descriptor_bounds!r})"
            )
        self.descriptor_bounds = (lo, hi)
        if task.obs_norm:
            self.init_data, self.update_data = task.init_data, task.update_data

    def __call__(self, params: Any, key: Array, data: Any = None) -> tuple[Array, Array, dict]:
        fitness, traj = self.task.rollout(params, key, data)
        descriptor = jnp.asarray(self._fn(traj), jnp.float32)
        if self.obs_indices is not None and isinstance(self.descriptor, str):
            descriptor = descriptor[jnp.asarray(self.obs_indices)]
        info = {"episode_length": traj["episode_length"]}
        if "obs_stats" in traj:
            info["obs_stats"] = traj["obs_stats"]
        return fitness, descriptor, info

    def __repr__(self) -> str:
        return f"DescriptorTask({self.task!r}, descriptor={self.descriptor!r})"
