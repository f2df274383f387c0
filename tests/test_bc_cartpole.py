"""Behaviour cloning of scripted experts on gymnax environments (through realax.tasks).

DiscreteBC clones a CartPole-v1 controller (push towards where the pole is falling) and
ContinuousBC a clipped linear Pendulum-v1 controller, from transitions collected in the real
environments. Both are scored on held-out transitions from other seeds; the cloned CartPole
policy also balances the pole in closed loop.
"""

import jax
import jax.numpy as jnp
import numpy as np
import realax.tasks as rt
from realax.agents import ContinuousBC, DiscreteBC

N_ENVS = 16
N_STEPS = 250  # 4000 transitions per data set
BATCH = 256
UPDATES = 1500


def cartpole_expert(obs):
    # obs = (x, x_dot, theta, theta_dot): push right when the pole leans or swings right
    return (obs[..., 2] + 0.5 * obs[..., 3] > 0).astype(jnp.int32)


def pendulum_expert(obs):
    # obs = (cos theta, sin theta, theta_dot): a clipped linear (PD-like) torque in [-2, 2]
    torque = -5.0 * obs[..., 1] - 1.0 * obs[..., 2]
    return jnp.clip(torque, -2.0, 2.0)[..., None]


def collect(env, expert, key, explore):
    """Transitions of a behaviour policy: the expert, replaced by ``explore(key, obs)`` at 30%
    of the steps so that the data also covers states the expert would not visit. Every
    observation is labelled with the expert's action."""
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, N_ENVS))

    def step(carry, k):
        obs, state = carry
        k_mix, k_rand, k_step = jax.random.split(k, 3)
        label = expert(obs)
        explore_now = jax.random.uniform(k_mix, (N_ENVS,)) < 0.3
        random_action = explore(k_rand, obs)
        mask = explore_now.reshape((N_ENVS,) + (1,) * (label.ndim - 1))
        action = jnp.where(mask, random_action, label)
        obs2, state, *_ = jax.vmap(env.step)(jax.random.split(k_step, N_ENVS), state, action)
        return (obs2, state), (obs, label)

    _, (observations, labels) = jax.lax.scan(step, (obs, state), jax.random.split(k_run, N_STEPS))
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731
    return {"observations": flat(observations), "actions": flat(labels)}


def fit(agent, data, key):
    """UPDATES minibatch steps of size BATCH, sampled with replacement, in one lax.scan."""
    n = data["actions"].shape[0]
    idx = jax.random.randint(key, (UPDATES, BATCH), 0, n)
    batches = jax.tree.map(lambda x: x[idx], data)
    return jax.jit(lambda a, b: jax.lax.scan(lambda a, mb: a.update(mb), a, b))(agent, batches)


def closed_loop_returns(env, policy, key, steps=500):
    """Undiscounted return of the first episode of each of N_ENVS environments."""
    obs, state = jax.vmap(env.reset)(jax.random.split(key, N_ENVS))

    def step(carry, k):
        obs, state, alive, ret = carry
        obs, state, r, term, trunc, _ = jax.vmap(env.step)(
            jax.random.split(k, N_ENVS), state, policy(obs)
        )
        ret = ret + alive * r
        alive = alive * (1.0 - jnp.logical_or(term, trunc))
        return (obs, state, alive, ret), None

    init = (obs, state, jnp.ones(N_ENVS), jnp.zeros(N_ENVS))
    (_, _, _, ret), _ = jax.lax.scan(step, init, jax.random.split(key, steps))
    return np.asarray(ret)


def test_discrete_bc_clones_a_cartpole_expert():
    env = rt.make("CartPole-v1")
    n_actions = env.spec.action_dims
    explore = lambda k, obs: jax.random.randint(k, (N_ENVS,), 0, n_actions)  # noqa: E731
    train = collect(env, cartpole_expert, jax.random.key(0), explore)
    held_out = collect(env, cartpole_expert, jax.random.key(1), explore)
    # both actions are common in the data, so agreement is not won by a constant policy
    assert 0.3 < float(train["actions"].mean()) < 0.7

    agent = DiscreteBC.create(
        jax.random.key(2),
        train["observations"][:1],
        train["actions"][:1],
        n_actions=n_actions,
        hidden_dims=(64, 64),
        learning_rate=3e-3,
    )
    agent, infos = fit(agent, train, jax.random.key(3))
    assert float(infos["loss"][-100:].mean()) < 0.3 * float(infos["loss"][:10].mean())

    predicted = agent.sample_actions(
        held_out["observations"], seed=jax.random.key(4), deterministic=True
    )
    agreement = float(jnp.mean(predicted == held_out["actions"]))
    assert agreement >= 0.95, f"held-out action agreement {agreement:.3f} < 0.95"

    # The clone also balances the pole like the expert does.
    eval_env = rt.make("CartPole-v1", autoreset=False)
    expert_ret = closed_loop_returns(eval_env, cartpole_expert, jax.random.key(5))
    clone_ret = closed_loop_returns(
        eval_env,
        lambda obs: agent.sample_actions(obs, seed=jax.random.key(0), deterministic=True),
        jax.random.key(5),
    )
    assert expert_ret.mean() > 400, expert_ret
    assert clone_ret.mean() > 0.8 * expert_ret.mean(), (clone_ret, expert_ret)


def test_continuous_bc_clones_a_pendulum_controller():
    env = rt.make("Pendulum-v1")
    low, high = float(env.spec.action_low[0]), float(env.spec.action_high[0])
    explore = lambda k, obs: jax.random.uniform(k, (N_ENVS, 1), minval=low, maxval=high)  # noqa: E731
    train = collect(env, pendulum_expert, jax.random.key(0), explore)
    held_out = collect(env, pendulum_expert, jax.random.key(1), explore)
    variance = float(jnp.var(held_out["actions"]))
    assert variance > 0.5  # the controller's torques span the range, saturating at the bounds

    agent = ContinuousBC.create(
        jax.random.key(2),
        train["observations"][:1],
        train["actions"][:1],
        hidden_dims=(64, 64),
        learning_rate=3e-3,
    )
    agent, infos = fit(agent, train, jax.random.key(3))
    assert float(infos["mse"][-100:].mean()) < 0.05 * float(infos["mse"][:10].mean())

    predicted = agent.sample_actions(
        held_out["observations"], seed=jax.random.key(4), deterministic=True
    )
    assert predicted.shape == held_out["actions"].shape
    mse = float(jnp.mean((predicted - held_out["actions"]) ** 2))
    # a small error relative to the spread of the expert's torques (range [-2, 2])
    assert mse < 0.02 * variance, f"held-out MSE {mse:.4f} vs action variance {variance:.3f}"
