"""Property-based tests (hypothesis): FitnessShaper, device round trips, the reward mask.

(packages/realax-agents/tests/test_devices.py already checks the shard_batch split order and
float/int replicate round trips; here: nested pytrees holding typed PRNG keys.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import realax.tasks as rt
from flax import struct
from gymnax.environments import environment, spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from realax.agents import replicate, shard_batch, unreplicate
from realax.train import EvosaxTrainer, FitnessShaper

# ----------------------------------------------------------------------------- FitnessShaper

FLAGS = st.fixed_dictionaries(
    {"centered_rank": st.booleans(), "z_score": st.booleans(), "norm_range": st.booleans()}
)
ints = st.lists(st.integers(-1000, 1000), min_size=2, max_size=24)
# a fixed population size: every example reuses the kernels compiled for the first one
ints16 = st.lists(st.integers(-1000, 1000), min_size=16, max_size=16)
specials = st.sampled_from([np.nan, np.inf, -np.inf])


def _apply(shaper, fitness):
    fitness = np.asarray(fitness, np.float32)
    x = np.zeros((fitness.size, 2), np.float32)
    return np.asarray(shaper.apply(x, fitness))


@settings(max_examples=40, deadline=None)
@given(values=ints, maximize=st.booleans())
def test_centered_ranks_are_invariant_under_increasing_transforms(values, maximize):
    f = np.asarray(values, np.float32)
    shaper = FitnessShaper(maximize=maximize, centered_rank=True)
    base = _apply(shaper, f)
    for g in (lambda v: 3.0 * v + 7.0, lambda v: v**3, lambda v: np.arctan(v / 500.0)):
        np.testing.assert_array_equal(_apply(shaper, g(f)), base)
    # ranks: a permutation of the evenly spaced grid on [-0.5, 0.5] (ties broken by index)
    np.testing.assert_allclose(np.sort(base), np.linspace(-0.5, 0.5, f.size), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(values=ints16, flags=FLAGS, n_special=st.integers(0, 3), special=specials)
def test_maximize_is_minimizing_the_negation(values, flags, n_special, special):
    f = np.asarray(values, np.float32)
    f[:n_special] = special
    np.testing.assert_array_equal(
        _apply(FitnessShaper(maximize=True, **flags), f),
        _apply(FitnessShaper(maximize=False, **flags), -f),
    )


@settings(max_examples=80, deadline=None)
@given(
    values=ints16,
    flags=FLAGS,
    maximize=st.booleans(),
    bad=st.lists(st.tuples(st.integers(0, 23), specials), min_size=1, max_size=5),
)
def test_non_finite_fitness_ranks_worst_and_the_output_stays_finite(values, flags, maximize, bad):
    f = np.asarray(values, np.float32)
    for i, v in bad:
        f[i % f.size] = v
    shaped = _apply(FitnessShaper(maximize=maximize, **flags), f)
    assert np.isfinite(shaped).all()
    finite = np.isfinite(f)
    if finite.any():
        # lower is better: every NaN/inf member is at least as bad as every finite one
        assert shaped[~finite].min() >= shaped[finite].max()
        # ... and the best finite member is the best overall
        best = (
            np.argmax(np.where(finite, f, -np.inf))
            if maximize
            else np.argmin(np.where(finite, f, np.inf))
        )
        assert shaped[best] == shaped.min()


def test_es_with_nan_and_inf_members_still_converges_when_maximizing():
    # the optimum x = 0.5 sits on the border of a region returning NaN (x0 > 0.5) or
    # +inf (x1 > 0.8: "infinitely good", but non-finite means failed)
    def task(x, key=None, data=None):
        f = -jnp.sum((x - 0.5) ** 2)
        f = jnp.where(x[0] > 0.5, jnp.nan, f)
        return jnp.where(x[1] > 0.8, jnp.inf, f), {}

    t = EvosaxTrainer(
        120,
        "SNES",
        task,
        params_like=jnp.full(2, -1.0),
        popsize=16,
        fitness_shaper=FitnessShaper(maximize=True),
    )
    state, m = t(jax.random.key(1))
    assert m["n_nonfinite"].sum() > 0 and np.all(m["n_nonfinite"] < 16)
    assert np.isfinite(np.asarray(state.mean)).all()
    assert -1e-3 < float(state.best_fitness) <= 0.0  # converged, never +inf or NaN
    assert float(state.best_params[0]) <= 0.5 and float(state.best_params[1]) <= 0.8


# ----------------------------------------------------------------------------- devices

leaf_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(leaf_shapes, min_size=1, max_size=3),
    seeds=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3),
    impl=st.sampled_from(["threefry2x32", "rbg"]),
)
def test_replicate_unreplicate_round_trip_keeps_typed_keys_and_structure(shapes, seeds, impl):
    rng = np.random.default_rng(seeds[0])
    tree = {
        "params": [rng.normal(size=s).astype(np.float32) for s in shapes],
        "keys": tuple(jax.random.key(s, impl=impl) for s in seeds),
        "step": np.int32(len(seeds)),
    }
    back = unreplicate(replicate(tree))
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for a, b in zip(back["keys"], tree["keys"], strict=True):
        assert jax.random.key_impl(a) == jax.random.key_impl(b)
        np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b))
    for a, b in zip(back["params"], tree["params"], strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    # sharding a batch over one device then undoing it is the identity too
    batch = {"obs": rng.normal(size=(4, *shapes[0])).astype(np.float32)}
    np.testing.assert_array_equal(shard_batch(batch, n_devices=1)["obs"][0], batch["obs"])


# ----------------------------------------------------------------------------- reward mask

T = 8  # episode limit of the scripted env


@struct.dataclass
class ScriptState(environment.EnvState):
    time: int


@struct.dataclass
class ScriptParams(environment.EnvParams):
    max_steps_in_episode: int = T


class Scripted(environment.Environment):
    """The action is (reward, done): the policy scripts the episode; stepping on after the
    end would pay 1000 per step, so any reward counted after the first done shows up."""

    @property
    def default_params(self):
        return ScriptParams()

    def step_env(self, key, state, action, params):
        t = state.time + 1
        new = ScriptState(time=t)
        return self.get_obs(new), new, action[0], action[1] > 0.5, {}

    def reset_env(self, key, params):
        state = ScriptState(time=jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.float32)

    def action_space(self, params=None):
        return spaces.Box(-1e4, 1e4, (2,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(0.0, 100.0, (1,), jnp.float32)


def _script_policy(params):
    # params: (T + 1, 2) rows (reward, done) per step; after the end: (1000, 1)
    def act(obs, state, key):
        return params[obs[0].astype(jnp.int32)], state

    return act


_TASK = rt.GymnaxTask(Scripted(), model_factory=_script_policy)
_EVALUATE = jax.jit(_TASK.evaluate)
_ROLLOUT = jax.jit(_TASK.rollout)


@settings(max_examples=40, deadline=None)
@given(
    rewards=st.lists(st.integers(-50, 50), min_size=T, max_size=T),
    dones=st.lists(st.booleans(), min_size=T, max_size=T),
)
def test_returns_count_rewards_only_until_the_first_done(rewards, dones):
    params = np.stack([np.asarray(rewards, np.float32), np.asarray(dones, np.float32)], 1)
    params = np.concatenate([params, [[1000.0, 1.0]]]).astype(np.float32)
    end = dones.index(True) + 1 if any(dones) else T  # steps in the first episode
    expected = float(sum(rewards[:end]))
    key = jax.random.key(0)
    f_exit, info = _EVALUATE(params, key)
    f_traj, traj = _ROLLOUT(params, key)
    assert float(f_exit) == float(f_traj) == expected
    assert int(info["episode_length"]) == int(traj["episode_length"]) == end
    np.testing.assert_array_equal(np.asarray(traj["valid"]), [1] * end + [0] * (T - end))
