"""The original realax README's Logging example, changed only as the root README's migration
table says: flax ``MLPPolicy`` + ``make_model_factory`` for the equinox policy and
``eqx.partition`` / ``eqx.combine``, ``realax.log.Logger`` for ``rx.Logger``,
``realax.train.FitnessShaper`` for ``ex.FitnessShaper``; tiny sizes (the README's 500 env steps,
32 members, 3 evaluations and 256 generations become 60, 8, 2 and 4). The positional
``BraxTask(env_name, 500, mdl_factory, data_fn=...)`` call is the original's."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import realax.log as rlog
import realax.tasks as rt
from realax.tasks import ENV_SPACES
from realax.train import FitnessShaper, evolve


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


@pytest.mark.slow
def test_original_logging_example(tmp_path, offline_wandb):
    env_name = "reacher"
    obs_dims, action_dims, _ = ENV_SPACES[env_name]

    mlp_width = 32
    mlp_depth = 2
    policy = rt.MLPPolicy(action_dims=action_dims, width=mlp_width, depth=mlp_depth)
    params, mdl_factory = rt.make_model_factory(policy, jnp.zeros(obs_dims), jr.key(1))

    task = rt.BraxTask(
        env_name,
        60,  # max number of env steps (500 in the README)
        mdl_factory,  # function taking as input parameters and returning the model
        data_fn=lambda x: x,
    )
    assert task.model_factory is mdl_factory and task.policy is None

    ckpt = tmp_path / "ckpts_ex" / "es"
    logger = rlog.Logger(
        wandb_log=True,  # if data should be logged to wandb
        metrics_fn=rlog.default_es_metrics,  # min, max and mean fitness; checkpoints the state
        ckpt_file=str(ckpt),
        ckpt_freq=2,
    )
    config = {"mlp_width": mlp_width, "mlp_depth": mlp_depth, "env": env_name}
    logger.init(project="es_brax_example", config=config)  # useful only if logging to wandb
    evolved_policy, state = evolve(  # type:ignore
        params,
        task,
        key=jr.key(2),
        strategy="DES",
        popsize=8,
        eval_reps=2,  # number of evaluations per individual
        steps=4,
        use_scan=False,  # avoid using scan for memory
        fitness_shaper=FitnessShaper(maximize=True),  # maximise the return
        logger=logger,
    )
    logger.finish()

    # the evolved policy is the distribution's mean, shaped like the parameters
    assert jax.tree.structure(evolved_policy) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(evolved_policy), jax.tree.leaves(state.mean), strict=True):
        np.testing.assert_array_equal(a, b)
    # every generation logged (min, max and mean fitness), checkpoints every ckpt_freq
    rows = rlog.read_metrics(ckpt)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["fitness_min"] <= r["fitness_mean"] <= r["fitness_max"] <= 0 for r in rows)
    restored = rlog.restore(ckpt, like=state)
    np.testing.assert_array_equal(restored.best_fitness, state.best_fitness)
    fitness, _ = jax.jit(task)(evolved_policy, jr.key(3))
    assert np.isfinite(float(fitness))


def test_original_gymnax_task_positional_factory():
    """``GymnaxTask(env, model_factory)``: the original's positional call."""
    policy = rt.MLPPolicy(action_dims=2, discrete=True, width=8, depth=1)
    params, factory = rt.make_model_factory(policy, jnp.zeros(4), jr.key(0))
    old = rt.GymnaxTask("CartPole-v1", factory)
    new = rt.GymnaxTask("CartPole-v1", model_factory=factory)
    assert old.model_factory is factory and old.policy is None
    f_old, _ = jax.jit(old)(params, jr.key(1))
    f_new, _ = jax.jit(new)(params, jr.key(1))
    assert float(f_old) == float(f_new) >= 1.0
    with pytest.raises(TypeError, match="model_factory= is given as well"):
        rt.GymnaxTask("CartPole-v1", factory, model_factory=factory)
    # a flax module in the policy position is still a policy
    assert rt.GymnaxTask("CartPole-v1", policy).policy is policy


def test_original_full_positional_orders():
    """``GymnaxTask(env, model_factory, env_params, data_fn)`` and ``BraxTask(env, max_steps,
    model_factory, backend, data_fn, env_kwargs)``: the original's whole positional order."""
    import gymnax

    policy = rt.MLPPolicy(action_dims=2, discrete=True, width=8, depth=1)
    params, factory = rt.make_model_factory(policy, jnp.zeros(4), jr.key(0))
    _, env_params = gymnax.make("CartPole-v1")
    env_params = env_params.replace(max_steps_in_episode=20)
    data_fn = lambda trajectory: trajectory["rewards"].sum()
    task = rt.GymnaxTask("CartPole-v1", factory, env_params, data_fn)
    assert task.model_factory is factory and task.data_fn is data_fn
    assert task.env.env_params.max_steps_in_episode == 20
    fitness, _ = jax.jit(task)(params, jr.key(1))
    assert 1.0 <= float(fitness) <= 20.0

    brax_policy = rt.MLPPolicy(action_dims=1, width=8, depth=1)
    _, brax_factory = rt.make_model_factory(brax_policy, jnp.zeros(4), jr.key(0))
    task = rt.BraxTask("inverted_pendulum", 20, brax_factory, "generalized", data_fn, {})
    assert task.model_factory is brax_factory and task.data_fn is data_fn
    assert task.env.env.unwrapped._backend == "generalized" and task.max_steps == 20
    with pytest.raises(ValueError, match="backend must be one of"):
        rt.BraxTask("inverted_pendulum", 20, brax_factory, "nope")
