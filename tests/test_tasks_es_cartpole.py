"""An MLPPolicy evolved on GymnaxTask("CartPole-v1") balances the pole (mean return >= 475)."""

import jax
import jax.numpy as jnp
import optax
import realax.tasks as rt
from evosax.algorithms import Open_ES
from jax.flatten_util import ravel_pytree

POPSIZE = 64
GENERATIONS = 40


def _evolve(task, params, key, generations=GENERATIONS):
    flat, unravel = ravel_pytree(params)
    es = Open_ES(
        population_size=POPSIZE,
        solution=flat,
        optimizer=optax.adam(0.05),
        std_schedule=optax.constant_schedule(0.1),
    )
    es_params = es.default_params

    def fitness(flat_params, k):
        # evosax minimises: negate the return (two episodes per candidate)
        f, _ = jax.vmap(task, (None, 0))(unravel(flat_params), jax.random.split(k, 2))
        return -jnp.mean(f)

    @jax.jit
    def generation(state, k):
        k_ask, k_eval, k_tell = jax.random.split(k, 3)
        pop, state = es.ask(k_ask, state, es_params)
        fit = jax.vmap(fitness, (0, None))(pop, k_eval)
        state, _ = es.tell(k_tell, pop, fit, state, es_params)
        return state, -fit.mean()

    k_init, k_run = jax.random.split(key)
    state = es.init(k_init, flat, es_params)
    state, mean_returns = jax.lax.scan(generation, state, jax.random.split(k_run, generations))
    return unravel(state.mean), mean_returns


def test_open_es_solves_cartpole():
    env = rt.make("CartPole-v1")
    policy = rt.MLPPolicy.from_env(env, width=16, depth=1)
    task = rt.GymnaxTask("CartPole-v1", policy=policy)
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))

    evolved, curve = _evolve(task, params, jax.random.key(1))

    keys = jax.random.split(jax.random.key(99), 16)
    returns, _ = jax.jit(jax.vmap(task, (None, 0)))(evolved, keys)
    print("mean return per generation:", curve)
    assert float(returns.mean()) >= 475.0, returns


def test_evosax_trainer_solves_cartpole_with_running_obs_norm():
    from realax.train import EvosaxTrainer, FitnessShaper

    env = rt.make("CartPole-v1")
    policy = rt.MLPPolicy.from_env(env, width=16, depth=1)
    task = rt.GymnaxTask("CartPole-v1", policy=policy, obs_norm=True)
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))
    trainer = EvosaxTrainer(
        train_steps=GENERATIONS,
        strategy="Open_ES",
        task=task,
        params_like=params,
        popsize=POPSIZE,
        fitness_shaper=FitnessShaper(maximize=True),
        es_kws={
            "optimizer": optax.adam(0.05),
            "std_schedule": optax.constant_schedule(0.1),
        },
        eval_reps=2,
    )
    state, metrics = trainer.init_and_train(jax.random.key(1))
    print("mean return per generation:", metrics["fitness_mean"])

    # the running statistics saw every valid step of every rollout
    assert float(state.data.count) > POPSIZE * 2 * GENERATIONS * 9
    keys = jax.random.split(jax.random.key(99), 16)
    returns, _ = jax.jit(jax.vmap(task, (None, 0, None)))(state.mean, keys, state.data)
    assert float(returns.mean()) >= 475.0, returns
