"""Tasks: reward masking, rollout modes, observation normalisation, suites, aggregation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from flax import struct
from gymnax.environments import environment, spaces

# --------------------------------------------------------------------------- a leaky env


@struct.dataclass
class CounterState(environment.EnvState):
    time: int


@struct.dataclass
class CounterParams(environment.EnvParams):
    end_at: int = 3
    max_steps_in_episode: int = 10


class LeakyCounter(environment.Environment):
    """Deterministic episode that terminates after ``end_at`` steps, with reward t at step t.

    Stepping on after the end keeps paying 100 per step, so any reward counted after the
    first end shows up in the return.
    """

    @property
    def default_params(self):
        return CounterParams()

    def step_env(self, key, state, action, params):
        ended = state.time >= params.end_at
        t = state.time + 1
        reward = jnp.where(ended, 100.0, t.astype(jnp.float32))
        new = CounterState(time=t)
        return self.get_obs(new), new, reward, t >= params.end_at, {}

    def reset_env(self, key, params):
        state = CounterState(time=jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 100.0, (1,), jnp.float32)


def _constant_action_factory(action):
    return lambda params: lambda obs, state, key: (jnp.asarray(action), state)


def _both_modes(task, params, key, data=None):
    f_exit, info = jax.jit(task.evaluate)(params, key, data)
    f_traj, traj = jax.jit(task.rollout)(params, key, data)
    return f_exit, info, f_traj, traj


def test_reward_mask_counts_nothing_after_the_first_end():
    task = rt.GymnaxTask(LeakyCounter(), model_factory=_constant_action_factory(0))
    f_exit, info, f_traj, traj = _both_modes(task, None, jax.random.key(0))
    assert float(f_exit) == float(f_traj) == 1.0 + 2.0 + 3.0
    assert int(info["episode_length"]) == int(traj["episode_length"]) == 3
    np.testing.assert_array_equal(traj["rewards"], [1, 2, 3] + [0] * 7)
    np.testing.assert_array_equal(traj["dones"], [0, 0, 1] + [0] * 7)
    np.testing.assert_array_equal(traj["valid"], [1, 1, 1] + [0] * 7)
    assert float(jnp.sum(traj["rewards"])) == float(f_traj)


def test_truncation_ends_the_return_too():
    # the environment's own limit (2 steps) ...
    env = LeakyCounter()
    params = CounterParams(end_at=50, max_steps_in_episode=2)
    task = rt.GymnaxTask(env, model_factory=_constant_action_factory(1), env_params=params)
    f_exit, _, f_traj, traj = _both_modes(task, None, jax.random.key(0))
    assert float(f_exit) == float(f_traj) == 3.0 and bool(traj["truncated"][1])
    # ... and a task limit shorter than the episode
    task = rt.GymnaxTask(env, model_factory=_constant_action_factory(1), max_steps=2)
    f_exit, info, f_traj, traj = _both_modes(task, None, jax.random.key(0))
    assert float(f_exit) == float(f_traj) == 3.0 and traj["rewards"].shape == (2,)


def test_gymnax_modes_agree_under_jit_and_vmap_over_params_and_keys():
    policy = rt.MLPPolicy(action_dims=2, width=8, depth=1, discrete=True)
    task = rt.GymnaxTask("CartPole-v1", policy=policy)
    pop = jax.vmap(lambda k: rt.make_model_factory(policy, jnp.zeros(4), k)[0])(
        jax.random.split(jax.random.key(0), 6)
    )
    keys = jax.random.split(jax.random.key(1), 6)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def both(pop, keys):
        f1, i1 = jax.vmap(task)(pop, keys)
        f2, traj = jax.vmap(task.rollout)(pop, keys)
        return f1, i1, f2, traj

    f1, i1, f2, traj = both(pop, keys)
    both(pop, keys)  # no retrace
    chex.assert_trees_all_close(f1, f2)
    np.testing.assert_array_equal(i1["episode_length"], traj["episode_length"])
    chex.assert_trees_all_close(jnp.sum(traj["rewards"], axis=1), f1)
    assert traj["obs"].shape == (6, 500, 4) and traj["actions"].shape == (6, 500)
    assert f1.dtype == jnp.float32 and float(f1.min()) >= 1.0
    assert len(set(np.asarray(f1).tolist())) > 1  # different params, different returns


@pytest.mark.slow
def test_brax_trajectory_on_inverted_pendulum_has_right_shapes_and_sums_to_fitness():
    policy = rt.GRUPolicy(action_dims=1, hidden_size=5, action_low=-3.0, action_high=3.0)
    task = rt.BraxTask("inverted_pendulum", 60, policy=policy)
    assert task.env.suite == "brax" and task.env.unwrapped.backend == "positional"
    keys = jax.random.split(jax.random.key(0), 3)
    pop = jax.vmap(lambda k: rt.make_model_factory(policy, jnp.zeros(4), k)[0])(keys)

    fit, traj = jax.jit(jax.vmap(task.rollout))(pop, keys)
    assert traj["obs"].shape == (3, 60, 4)
    assert traj["actions"].shape == (3, 60, 1)
    assert traj["rewards"].shape == traj["dones"].shape == traj["valid"].shape == (3, 60)
    assert traj["policy_states"].shape == (3, 60, 5)
    np.testing.assert_allclose(jnp.sum(traj["rewards"], axis=1), fit, rtol=1e-6)
    assert bool(jnp.all(jnp.abs(traj["actions"]) <= 3.0))
    # the first policy state is the initial one, then the GRU memory changes
    assert not bool(jnp.any(traj["policy_states"][:, 0])) and bool(
        jnp.any(traj["policy_states"][:, 5])
    )

    fit_exit, info = jax.jit(jax.vmap(task))(pop, keys)
    chex.assert_trees_all_close(fit_exit, fit, rtol=1e-6)
    np.testing.assert_array_equal(info["episode_length"], traj["episode_length"])
    # inverted_pendulum pays 1 per step until the pole falls: return == episode length
    np.testing.assert_allclose(fit, traj["episode_length"].astype(jnp.float32))


@pytest.mark.slow
def test_brax_episode_ending_early_is_masked():
    # a constant full push topples the pendulum well before 200 steps; brax itself keeps
    # paying reward 1 per step afterwards, the task must not.
    task = rt.BraxTask(
        "inverted_pendulum", 200, model_factory=_constant_action_factory(jnp.array([3.0]))
    )
    fit, traj = jax.jit(task.rollout)(None, jax.random.key(0))
    length = int(traj["episode_length"])
    assert 0 < length < 200 and float(fit) == float(length)
    assert bool(traj["terminated"][length - 1]) and float(traj["rewards"][length:].sum()) == 0.0
    obs, state = task.reset(jax.random.key(0))
    assert obs.shape == (4,) and int(state.t) == 0


@pytest.mark.slow
def test_obs_norm_statistics_match_numpy():
    policy = rt.MLPPolicy(action_dims=2, width=8, depth=1, discrete=True)
    task = rt.GymnaxTask("CartPole-v1", policy=policy, obs_norm=True, max_steps=100)
    pop = jax.vmap(lambda k: rt.make_model_factory(policy, jnp.zeros(4), k)[0])(
        jax.random.split(jax.random.key(0), 4)
    )
    data0 = task.init_data(jax.random.key(0))
    assert float(data0.count) == 0.0

    def population(fn, keys, data):  # (popsize, eval_reps), as EvosaxTrainer batches infos
        return jax.jit(jax.vmap(jax.vmap(fn, (None, 0, None)), (0, 0, None)))(pop, keys, data)

    keys = jax.random.split(jax.random.key(1), (4, 3))
    _, traj = population(task.rollout, keys, data0)
    _, info = population(task.evaluate, keys, data0)
    data1 = task.update_data(data0, traj)
    seen = np.asarray(traj["obs"])[np.asarray(traj["valid"])]
    assert float(data1.count) == len(seen) == int(np.sum(traj["episode_length"]))
    np.testing.assert_allclose(data1.mean, seen.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(data1.var, seen.var(0), rtol=1e-4, atol=1e-6)
    # the early-exit mode's streaming (Welford) statistics give the same result
    chex.assert_trees_all_close(task.update_data(data0, info), data1, rtol=1e-4, atol=1e-6)

    # a second generation, normalised with data1, merges into the running statistics
    keys2 = jax.random.split(jax.random.key(2), (4, 3))
    _, traj2 = population(task.rollout, keys2, data1)
    data2 = task.update_data(data1, traj2)
    seen2 = np.concatenate([seen, np.asarray(traj2["obs"])[np.asarray(traj2["valid"])]])
    np.testing.assert_allclose(data2.mean, seen2.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(data2.var, seen2.var(0), rtol=1e-4, atol=1e-6)

    # the policy acts on observations normalised with the statistics in `data`
    class Recorder:  # a model whose state is the last observation it was given
        def initialize(self, key):
            return jnp.zeros(4)

        def __call__(self, obs, state, key):
            return jnp.int32(0), obs

    spy = rt.GymnaxTask("CartPole-v1", model_factory=lambda p: Recorder(), obs_norm=True)
    _, traj = jax.jit(spy.rollout)(None, jax.random.key(5), data2)
    n = int(traj["episode_length"])
    seen_by_policy = traj["policy_states"][1:n]
    expected = (np.asarray(traj["obs"][: n - 1]) - seen2.mean(0)) / np.sqrt(seen2.var(0) + 1e-8)
    np.testing.assert_allclose(seen_by_policy, np.clip(expected, -10, 10), rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_jumanji_task_runs_several_environments():
    from jumanji.environments.routing.maze.generator import ToyGenerator

    cases = [
        ("Snake-v1", 40, {"num_rows": 6, "num_cols": 6}),
        ("Maze-v0", 30, {"generator": ToyGenerator()}),
        ("Game2048-v1", 40, {}),
    ]
    for name, steps, kwargs in cases:
        env = rt.make(name, **kwargs)
        policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
        task = rt.JumanjiTask(name, steps, policy=policy, env_kwargs=kwargs)
        keys = jax.random.split(jax.random.key(0), 2)
        example = jnp.zeros(env.obs_shape)
        pop = jax.vmap(lambda k, p=policy, x=example: rt.make_model_factory(p, x, k)[0])(keys)
        f1, info = jax.jit(jax.vmap(task))(pop, keys)
        f2, traj = jax.jit(jax.vmap(task.rollout))(pop, keys)
        chex.assert_trees_all_close(f1, f2)
        assert traj["obs"].shape == (2, steps) + env.obs_shape
        assert bool(jnp.all(jnp.isfinite(f1))) and bool(jnp.all(info["episode_length"] <= steps))
        assert bool(jnp.all(info["episode_length"] >= 1))


def test_aggregator_sums_fitness_and_reports_each_task():
    policy = rt.MLPPolicy(action_dims=2, width=8, depth=1, discrete=True)
    long = rt.GymnaxTask("CartPole-v1", policy=policy)
    short = rt.GymnaxTask("CartPole-v1", policy=policy, max_steps=5)
    agg = rt.MultiTaskAggregator([long, short])
    assert agg.names == ["CartPole-v1", "CartPole-v1_1"]
    params, _ = rt.make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
    key = jax.random.key(3)
    total, info = jax.jit(agg)(params, key)
    k1, k2 = jax.random.split(key)
    f1, _ = long(params, k1)
    f2, _ = short(params, k2)
    np.testing.assert_allclose(total, f1 + f2, rtol=1e-6)
    np.testing.assert_allclose(info["task_fitness"]["CartPole-v1"], f1)
    np.testing.assert_allclose(info["task_fitness"]["CartPole-v1_1"], f2)
    assert float(f2) <= 5.0 and agg.init_data(key) == (None, None)


def test_bad_task_arguments_fail_before_compilation():
    with pytest.raises(ValueError, match="exactly one of policy= .* or model_factory="):
        rt.GymnaxTask("CartPole-v1")
    with pytest.raises(ValueError, match="takes actions of shape"):
        rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2))
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True), max_steps=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True), mode="fast")
    task = rt.GymnaxTask(
        "CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True), obs_norm=True
    )
    params, _ = rt.make_model_factory(task.policy, jnp.zeros(4), jax.random.key(0))
    with pytest.raises(ValueError, match="data = task.init_data"):
        task(params, jax.random.key(0))
    with pytest.raises(ValueError, match="unknown environment name"):
        rt.GymnaxTask("CartPol-v1", policy=task.policy)


def test_aggregator_forwards_task_data_to_each_task():
    policy = rt.MLPPolicy(action_dims=2, width=8, depth=1, discrete=True)
    normed = rt.GymnaxTask("CartPole-v1", policy=policy, obs_norm=True, max_steps=30)
    plain = rt.GymnaxTask("CartPole-v1", policy=policy, max_steps=30)
    agg = rt.MultiTaskAggregator([normed, plain], names=["normed", "plain"])
    data = agg.init_data(jax.random.key(0))
    assert isinstance(data[0], rt.RunningStats) and data[1] is None
    pop = jax.vmap(lambda k: rt.make_model_factory(policy, jnp.zeros(4), k)[0])(
        jax.random.split(jax.random.key(1), 3)
    )
    keys = jax.random.split(jax.random.key(2), (3, 2))
    fit, info = jax.jit(jax.vmap(jax.vmap(agg, (None, 0, None)), (0, 0, None)))(pop, keys, data)
    assert fit.shape == (3, 2)
    new = agg.update_data(data, info)
    lengths = info["task_info"]["normed"]["episode_length"]
    assert float(new[0].count) == float(jnp.sum(lengths)) and new[1] is None
    np.testing.assert_allclose(
        fit, info["task_fitness"]["normed"] + info["task_fitness"]["plain"], rtol=1e-6
    )


@pytest.mark.slow
def test_compact_early_exit_equals_the_plain_one_under_nested_vmaps():
    # GRU: a policy state that must follow its member through the gathers and scatters
    policy = rt.GRUPolicy(action_dims=2, hidden_size=4, discrete=True)
    kw = dict(policy=policy, obs_norm=True, max_steps=120)
    plain, compact = (
        rt.GymnaxTask("CartPole-v1", **kw),
        rt.GymnaxTask("CartPole-v1", compact=True, **kw),
    )
    h = policy.initialize(jax.random.key(0))
    pop = jax.vmap(lambda k: policy.init(k, jnp.zeros(4), h, k))(
        jax.random.split(jax.random.key(0), 12)
    )
    data = plain.init_data(jax.random.key(0))
    for x in (jnp.ones(4), -jnp.ones(4), jnp.arange(4.0)):
        data = data.add(x)

    def population(task, keys):  # (popsize, eval_reps), as EvosaxTrainer evaluates
        fn = jax.vmap(jax.vmap(task, (None, 0, None)), (0, 0, None))
        return jax.jit(fn)(pop, keys, data)

    keys = jax.random.split(jax.random.key(1), (12, 3))
    (f1, i1), (f2, i2) = population(plain, keys), population(compact, keys)
    lengths = np.asarray(i1["episode_length"])
    # members end at different times, so both the all-members and the few-members steps ran
    assert lengths.min() < lengths.max() and np.sum(lengths > 36 // 4) < 36
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(i1["episode_length"], i2["episode_length"])
    chex.assert_trees_all_close(i1["obs_stats"], i2["obs_stats"], rtol=1e-5, atol=1e-5)

    # unbatched params (one member, many keys), per-member data, and no vmap at all
    one, f1 = jax.tree.map(lambda x: x[0], pop), f1[0]  # member 0's three evaluations
    f2, _ = jax.jit(jax.vmap(compact, (None, 0, None)))(one, keys[0], data)
    np.testing.assert_array_equal(f1, f2)
    datas = jax.tree.map(lambda x: jnp.stack([x] * 3), data)
    f2, _ = jax.jit(jax.vmap(compact, (None, 0, 0)))(one, keys[0], datas)
    np.testing.assert_array_equal(f1, f2)
    assert float(jax.jit(compact)(one, keys[0, 0], data)[0]) == float(f1[0])

    # model_factory tasks with params=None
    task = rt.GymnaxTask(LeakyCounter(), model_factory=_constant_action_factory(0), compact=True)
    f, info = jax.vmap(task, (None, 0))(None, jax.random.split(jax.random.key(0), 5))
    np.testing.assert_array_equal(f, [6.0] * 5)
    np.testing.assert_array_equal(info["episode_length"], [3] * 5)
    with pytest.raises(TypeError, match="compact must be True or False"):
        rt.GymnaxTask("CartPole-v1", policy=policy, compact="yes")
