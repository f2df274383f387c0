"""The uniform Env interface over gymnax, brax and jumanji; the name registry."""

import math
import subprocess
import sys
import textwrap

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from gymnax.environments import spaces


def _gymnax_ids():
    return list(gymnax.registered_envs)


@pytest.mark.parametrize("name", _gymnax_ids())
def test_every_gymnax_id_has_the_dimensions_of_its_spaces(name):
    try:
        env, params = gymnax.make(name)
    except OSError:  # MNISTBandit-bsuite downloads MNIST when created
        with pytest.raises(RuntimeError, match="could not fetch"):
            rt.get_env_dimensions(name)
        return
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    obs_dims, action_dims, discrete = rt.get_env_dimensions(name)
    assert obs_dims == math.prod(obs_space.shape)
    if isinstance(act_space, spaces.Discrete):
        assert (action_dims, discrete) == (act_space.n, True)
    else:
        assert (action_dims, discrete) == (math.prod(act_space.shape), False)
    wrapped = rt.make(name)
    assert wrapped.suite == "gymnax" and wrapped.name == env.name
    assert wrapped.max_steps == int(params.max_steps_in_episode)
    obs, _ = jax.eval_shape(wrapped.reset, jax.random.key(0))
    assert obs.shape == wrapped.obs_shape == tuple(obs_space.shape)


def test_env_spaces_table_matches_get_env_dimensions_for_gymnax_names():
    gymnax_names = [n for n in rt.ENV_SPACES if n in gymnax.registered_envs]
    assert {"CartPole-v1", "Pendulum-v1", "Reacher-misc"} <= set(gymnax_names)
    for name in gymnax_names:
        assert rt.ENV_SPACES[name] == rt.get_env_dimensions(name)
    assert rt.ENV_SPACES["CartPole-v1"] == (4, 2, True)
    with pytest.raises(KeyError, match="get_env_dimensions"):
        rt.ENV_SPACES["Breakout-MinAtar"]


def test_gymnax_step_matches_gymnax_and_autoresets():
    env = rt.make("CartPole-v1")
    raw, params = gymnax.make("CartPole-v1")
    key = jax.random.key(0)
    obs, state = env.reset(key)
    raw_obs, raw_state = raw.reset_env(key, params)
    np.testing.assert_allclose(obs, raw_obs)
    # always pushing right ends the episode early; the wrapper then starts a new one
    step = jax.jit(env.step)
    for t in range(1, 200):
        obs, state, reward, term, trunc, info = step(jax.random.key(t), state, 1)
        assert reward == 1.0 and not trunc
        if term:
            break
    assert term and int(state.t) == 0
    assert abs(float(info["final_obs"][2])) > 0.2  # pole angle past the threshold
    assert abs(float(obs[2])) <= 0.05  # a fresh episode's first observation


def test_truncation_at_max_steps_and_vmap_over_envs():
    env = rt.make("Pendulum-v1", max_steps=5)
    assert env.max_steps == 5 and env.action_low.tolist() == [-2.0] and not env.discrete
    keys = jax.random.split(jax.random.key(0), 8)
    obs, state = jax.vmap(env.reset)(keys)
    assert obs.shape == (8, 3)
    step = jax.jit(jax.vmap(env.step))
    for t in range(5):
        acts = jax.vmap(env.sample_action)(jax.random.split(jax.random.key(t), 8))
        obs, state, reward, term, trunc, info = step(keys, state, acts)
    assert bool(jnp.all(trunc)) and not bool(jnp.any(term))
    assert info["final_obs"].shape == (8, 3) and bool(jnp.all(state.t == 0))
    with pytest.raises(ValueError, match=r"takes continuous actions of shape \(1,\)"):
        env.step(keys[0], jax.tree.map(lambda x: x[0], state), jnp.zeros(3))


@pytest.mark.slow
def test_wrap_instances_of_each_suite():
    import brax.envs
    import jumanji

    g = rt.wrap(gymnax.environments.CartPole())
    assert g.suite == "gymnax" and g.action_dims == 2
    b = rt.wrap(brax.envs.get_environment("inverted_pendulum", backend="positional"))
    assert b.suite == "brax" and b.name == "inverted_pendulum" and b.obs_shape == (4,)
    assert b.action_dims == 1
    assert b.action_low.tolist() == [-3.0] and b.action_high.tolist() == [3.0]
    j = rt.wrap(jumanji.make("Game2048-v1"))
    assert j.suite == "jumanji" and j.discrete and j.action_dims == 4 and j.obs_shape == (20,)
    assert rt.wrap(g) is g
    with pytest.raises(TypeError, match="gymnax Environment, a brax Env"):
        rt.wrap(object())


@pytest.mark.slow
def test_brax_env_by_name_backends_and_limits():
    env = rt.make("inverted_pendulum", episode_length=3)
    assert env.suite == "brax" and env.max_steps == 3 and env.unwrapped.backend == "positional"
    obs, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for t in range(3):
        obs, state, reward, term, trunc, _ = step(jax.random.key(t), state, jnp.zeros(1))
    assert bool(trunc) and int(state.t) == 0 and obs.shape == (4,)
    assert rt.get_env_dimensions("inverted_pendulum") == (4, 1, False)
    assert set(rt.BRAX_BACKENDS) == {"generalized", "positional", "spring", "mjx"}
    with pytest.raises(ValueError, match="backend must be one of"):
        rt.make("inverted_pendulum", backend="warp")
    # swimmer only runs on the generalized pipeline: say so when it is asked for, and still
    # report its dimensions (without a backend, make picks one it supports: see test_quiet)
    with pytest.raises(ValueError, match="does not support backend='positional'"):
        rt.make("swimmer", backend="positional")
    import brax.envs

    swimmer = brax.envs.get_environment("swimmer", backend="generalized")
    dims = (swimmer.observation_size, swimmer.action_size, False)
    assert rt.get_env_dimensions("swimmer") == dims


@pytest.mark.slow
def test_jumanji_envs_flatten_structured_observations():
    snake = rt.make("Snake-v1", num_rows=6, num_cols=6)
    assert snake.obs_shape == (6 * 6 * 5 + 4,) and snake.action_dims == 4 and snake.discrete
    assert snake.max_steps == 4000  # Snake's own time_limit
    obs, state = snake.reset(jax.random.key(0))
    obs, state, reward, term, trunc, _ = jax.jit(snake.step)(jax.random.key(1), state, 0)
    assert obs.dtype == jnp.float32 and obs.shape == snake.obs_shape
    warehouse = rt.make("RobotWarehouse-v0")
    assert warehouse.discrete and warehouse.action_dims == (5, 5, 5, 5)
    act = warehouse.sample_action(jax.random.key(0))
    assert act.shape == (4,) and bool(jnp.all((act >= 0) & (act < 5)))
    rescue = rt.make("SearchAndRescue-v0")
    assert not rescue.discrete and rescue.action_dims == 4 and rescue.action_shape == (2, 2)
    assert rt.get_env_dimensions("Game2048-v1") == (20, 4, True)


def test_unknown_names_list_close_matches():
    with pytest.raises(ValueError, match="Did you mean 'CartPole-v1'"):
        rt.make("CartPole-v2")
    with pytest.raises(ValueError, match="'halfcheetah'"):
        rt.make("half_cheetah")
    with pytest.raises(ValueError, match="unknown environment name 'zzzz'"):
        rt.get_env_dimensions("zzzz")
    with pytest.raises(ValueError, match="not a registered brax environment"):
        rt.make("brax/CartPole-v1")
    assert rt.make("gymnax/Acrobot-v1").action_dims == 3
    assert "ant" in rt.registered_names("brax") and "Snake-v1" in rt.registered_names()


def test_missing_suite_raises_import_error_naming_the_extra(tmp_path):
    # A child interpreter where brax cannot be imported (as if not installed).
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            sys.modules["brax"] = None
            sys.modules["brax.envs"] = None
            import realax.tasks as rt
            try:
                rt.make("ant")
            except ImportError as e:
                print("ERR", e)
            try:
                rt.BraxTask("ant", policy=rt.MLPPolicy(action_dims=8))
            except ImportError as e:
                print("ERR", e)
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("ERR")]
    assert len(errors) == 2
    for line in errors:
        assert 'pip install "realax-tasks[brax]"' in line


@pytest.mark.slow
def test_base_package_works_without_any_suite(tmp_path):
    script = tmp_path / "bare.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            for mod in ("gymnax", "brax", "brax.envs", "jumanji"):
                sys.modules[mod] = None
            import jax, jax.numpy as jnp
            import realax.tasks as rt
            policy = rt.MLPPolicy(action_dims=2, width=4, depth=1, discrete=True)
            params, factory = rt.make_model_factory(policy, jnp.zeros(3), jax.random.key(0))
            print("ACTION", int(factory(params)(jnp.ones(3), None, jax.random.key(1))[0]))
            for name in ("CartPole-v1", "Snake-v1"):
                try:
                    rt.make(name)
                except ImportError as e:
                    print("ERR", e)
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("ACTION") for line in lines)
    errors = [line for line in lines if line.startswith("ERR")]
    assert len(errors) == 2
    assert 'pip install "realax-tasks[gymnax]"' in errors[0]
    assert 'pip install "realax-tasks[jumanji]"' in errors[1]
