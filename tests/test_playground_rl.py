"""MuJoCo Playground (dm_control suite, ``impl="jax"``) in realax.train: an ES run of
``EvosaxTrainer`` on a ``PlaygroundTask`` and PPO with observation normalisation
(issue #19; issue #20's "PPO with normalisation on one Playground environment").

Compiling dominates the cost (about 50 s of CPU for the PPO trainer, whose rollout and
update inline the MJX step); running 100k steps takes about a second of CPU."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import realax.tasks as rt

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("mujoco_playground") is None,
        reason='needs pip install "realax-tasks[playground]"',
    ),
]


@pytest.fixture(scope="module")
def swingup():
    """CartpoleSwingup with episodes of 250 steps (2.5 simulated seconds)."""
    return rt.make("CartpoleSwingup", max_steps=250)


def test_evosax_trainer_on_a_playground_task(swingup):
    from realax.train import EvosaxTrainer, FitnessShaper

    policy = rt.MLPPolicy.from_env(swingup, width=8, depth=1)
    task = rt.PlaygroundTask(swingup.replace(autoreset=False), 20, policy=policy)
    params, _ = rt.make_model_factory(policy, jnp.zeros(swingup.obs_shape), jax.random.key(0))
    trainer = EvosaxTrainer(
        train_steps=3,
        strategy="Open_ES",
        task=task,
        params_like=params,
        popsize=4,
        fitness_shaper=FitnessShaper(maximize=True),
        es_kws={"optimizer": optax.adam(0.05), "std_schedule": optax.constant_schedule(0.1)},
    )
    state, metrics = trainer.init_and_train(jax.random.key(1))
    fitness = np.asarray(metrics["fitness_mean"])
    assert fitness.shape == (3,) and np.all(np.isfinite(fitness))
    assert np.all((fitness >= 0) & (fitness <= 20))  # dense rewards in [0, 1] per step
    assert int(state.step) == 3


def test_ppo_with_normalisation_improves_on_cartpole_swingup(swingup):
    """200 train steps of 16 envs x 32 steps (102,400 env steps). Measured with key 0: the
    training episodes' mean return goes from 18-30 (episodes 2-6) to 29-33 (the last five);
    a swing-up is not learned at this budget, so this asserts a finite, improving return."""
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer

    trainer = OnPolicyTrainer(
        PPO, swingup, num_envs=16, num_steps=32, train_steps=200, anneal_lr=True,
        eval_episodes=0, normalize_obs=True,
        agent_kwargs=dict(
            hidden_dims=(32, 32), num_minibatches=4, update_epochs=4, learning_rate=1e-3
        ),
    )  # fmt: skip
    state, metrics = trainer.init_and_train(jax.random.key(0))
    assert float(state.norm.obs.count) == 200 * 16 * 32
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    returns = np.asarray(metrics["episode_return"])
    returns = returns[~np.isnan(returns)]
    assert len(returns) >= 20 and np.all(np.isfinite(returns))
    early, late = returns[1:6].mean(), returns[-5:].mean()
    assert late > early + 2.0, (early, late, returns)
