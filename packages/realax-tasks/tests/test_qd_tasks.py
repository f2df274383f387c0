"""QD tasks: the maze's physics and descriptors, DescriptorTask on a gymnax environment."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from realax.tasks._qd_tasks import _hits


def _path_around_the_walls(n_steps: int = 50) -> jax.Array:
    """Right, up past the first wall, left under the second, up to the goal (0.05 a step)."""
    moves = [(10.0, 0.0)] * 14 + [(0.0, 10.0)] * 7 + [(-10.0, 0.0)] * 14 + [(0.0, 10.0)] * 9
    actions = np.zeros((n_steps, 2), np.float32)
    actions[: len(moves)] = moves
    return jnp.asarray(actions)


def test_maze_straight_up_is_blocked_and_the_detour_reaches_the_goal():
    task = rt.MazeTask(n_steps=50)
    up = jnp.zeros((50, 2)).at[:, 1].set(10.0)
    fitness, descriptor, info = task(up, jax.random.key(0))
    assert float(descriptor[1]) == pytest.approx(0.25, abs=1e-5)  # stopped below the wall
    assert float(descriptor[0]) == pytest.approx(0.15)
    assert float(fitness) == pytest.approx(-float(jnp.linalg.norm(descriptor - task.goal)))
    assert not bool(info["reached"])
    fitness, descriptor, info = task(_path_around_the_walls(), jax.random.key(0))
    assert bool(info["reached"]) and float(fitness) > -0.01, (fitness, descriptor)
    np.testing.assert_allclose(descriptor, [0.15, 0.9], atol=1e-3)


def test_maze_never_crosses_a_wall_and_descriptors_spread():
    task = rt.MazeTask(n_steps=60)
    params = 2.0 * jax.random.normal(jax.random.key(0), (256, 60, 2))
    paths = jax.vmap(task.positions)(params)  # (256, 60, 2)
    starts = jnp.concatenate([jnp.broadcast_to(task.start, (256, 1, 2)), paths[:, :-1]], 1)
    crossed = jax.vmap(jax.vmap(lambda p, q: jnp.isfinite(_hits(p, q, task.walls)).any()))(
        starts, paths
    )
    moved = jnp.any(starts != paths, axis=-1)
    assert not bool(jnp.any(crossed & moved))  # a move that would cross a wall is not made
    assert bool(jnp.all((paths >= 0.0) & (paths <= 1.0)))
    _, descriptors, _ = jax.vmap(task, in_axes=(0, None))(params, jax.random.key(1))
    np.testing.assert_array_equal(descriptors, paths[:, -1])
    # random walks cover a good part of the bottom corridor and none passes both walls
    assert float(np.ptp(descriptors[:, 0])) > 0.3
    assert bool(jnp.all(descriptors[:, 1] < 0.6))


def test_maze_closed_loop_policy_and_sensors():
    class Policy(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(2)(nn.tanh(nn.Dense(8)(obs)))

    task = rt.MazeTask(n_steps=30, policy=Policy(), n_rays=4)
    params = task.init_params(jax.random.key(0))
    fitness, descriptor, info = jax.jit(task)(params, jax.random.key(0))
    assert descriptor.shape == (2,) and fitness.shape == () and info["distance"].shape == ()
    obs = task.observe(jnp.asarray([0.15, 0.1]))
    # rays at 0, 90, 180, 270 degrees: the wall above at 0.2, the border below at 0.1
    np.testing.assert_allclose(obs, [0.15, 0.1, 1.0, 0.2 / 0.3, 0.5, 0.1 / 0.3], rtol=1e-5)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(n_steps=0), "n_steps"),
        (dict(start=(1.5, 0.1)), "start must be a point"),
        (dict(max_speed=0.0), "max_speed"),
        (dict(policy=lambda obs: obs), "policy must be a flax module"),
    ],
)
def test_maze_errors(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rt.MazeTask(**kw)


@pytest.fixture(scope="module")
def cartpole():
    policy = rt.MLPPolicy(action_dims=2, discrete=True, width=8, depth=1)
    env_task = rt.GymnaxTask("CartPole-v1", policy=policy, max_steps=100)

    def init(key):
        obs = jnp.zeros(4)
        return policy.init(key, obs, policy.initialize(key), key)

    params = jax.vmap(init)(jax.random.split(jax.random.key(0), 32))
    return env_task, params


@pytest.mark.slow
def test_descriptor_task_on_cartpole(cartpole):
    env_task, params = cartpole
    bounds = ([-2.4, -0.21], [2.4, 0.21])
    task = rt.DescriptorTask(env_task, "mean_obs", bounds, obs_indices=(0, 2))
    keys = jax.random.split(jax.random.key(1), 32)
    fitness, descriptors, info = jax.jit(jax.vmap(task))(params, keys)
    ret, _ = jax.jit(jax.vmap(env_task))(params, keys)
    np.testing.assert_array_equal(fitness, ret)  # the episode return, the same rollout
    assert descriptors.shape == (32, 2) and task.descriptor_bounds == bounds
    # an episode ends when the cart or the pole leaves its range: the means stay inside
    lo, hi = np.asarray(bounds)
    assert np.all((descriptors >= lo - 1e-6) & (descriptors <= hi + 1e-6))
    assert float(np.std(descriptors[:, 1])) > 1e-3  # different policies, different behaviour
    assert set(info) == {"episode_length"}

    final = rt.DescriptorTask(env_task, "final_obs", ([-5, -5], [5, 5]), obs_indices=(0, 1))
    _, d_final, info = jax.vmap(final)(params, keys)
    # the last observation of a failed episode: the cart or pole near its limit
    traj = jax.vmap(env_task.rollout)(params, keys)[1]
    idx = info["episode_length"] - 1
    np.testing.assert_array_equal(d_final, traj["obs"][jnp.arange(32), idx][:, :2])

    own = rt.DescriptorTask(env_task, lambda tr: jnp.stack([tr["episode_length"] / 100.0]),
                            ([0.0], [1.0]))  # fmt: skip
    _, d_own, _ = jax.vmap(own)(params, keys)
    np.testing.assert_allclose(d_own[:, 0], info["episode_length"] / 100.0)


def test_descriptor_task_errors(cartpole):
    env_task, _ = cartpole
    with pytest.raises(ValueError, match="unknown descriptor 'last'"):
        rt.DescriptorTask(env_task, "last", ([0.0], [1.0]))
    with pytest.raises(ValueError, match="minval < maxval"):
        rt.DescriptorTask(env_task, "mean_obs", ([1.0], [0.0]))
    with pytest.raises(TypeError, match="must be a realax.tasks.EnvTask"):
        rt.DescriptorTask(lambda p, k: (0.0, {}), "mean_obs", ([0.0], [1.0]))
