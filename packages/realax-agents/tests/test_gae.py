"""gae() against a plain-Python reference, including dones and truncation bootstrapping."""

import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import gae


def _reference(rewards, values, next_values, dones, terms, discount, lam):
    T = len(rewards)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        delta = rewards[t] + discount * (1 - terms[t]) * next_values[t] - values[t]
        running = delta + discount * lam * (1 - dones[t]) * running
        adv[t] = running
    return adv, adv + values


def test_gae_matches_reference_with_dones_per_env():
    rng = np.random.default_rng(0)
    T, N = 12, 3
    rewards, values = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    dones = rng.random((T, N)) < 0.2
    last = rng.normal(size=N)
    adv, ret = gae(
        rewards=rewards, values=values, dones=dones, last_value=last, discount=0.97, gae_lambda=0.9
    )
    for n in range(N):
        next_values = np.append(values[1:, n], last[n])
        ref_adv, ref_ret = _reference(
            rewards[:, n], values[:, n], next_values, dones[:, n], dones[:, n], 0.97, 0.9
        )
        np.testing.assert_allclose(adv[:, n], ref_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ret[:, n], ref_ret, rtol=1e-5, atol=1e-5)


def test_gae_truncation_bootstraps_the_final_state_value():
    rewards = np.ones(4)
    values = np.zeros(4)
    # the episode is cut by a time limit after step 1 (done, not terminated); the final
    # state's value 10 is bootstrapped, but the trace does not leak into the next episode
    dones = np.array([0, 1, 0, 0])
    terminations = np.zeros(4)
    next_values = np.array([0.0, 10.0, 0.0, 5.0])
    run = lambda **terms: gae(
        rewards=rewards, values=values, dones=dones, next_values=next_values, **terms
    )
    adv, _ = run(terminations=terminations, discount=0.5, gae_lambda=1.0)
    ref, _ = _reference(rewards, values, next_values, dones, terminations, 0.5, 1.0)
    np.testing.assert_allclose(adv, ref, rtol=1e-6)
    np.testing.assert_allclose(adv[:2], [1 + 0.5 * (1 + 0.5 * 10), 1 + 0.5 * 10])
    # treating the same step as a termination drops the bootstrap
    adv_term, _ = run(discount=0.5, gae_lambda=1.0)  # terminations default to dones
    np.testing.assert_allclose(adv_term[:2], [1.5, 1.0])


def test_gae_lambda_zero_is_one_step_td_and_lambda_one_is_monte_carlo():
    rng = np.random.default_rng(1)
    rewards, values = rng.normal(size=6), rng.normal(size=6)
    dones = np.zeros(6)
    run = lambda lam: gae(
        rewards=rewards,
        values=values,
        dones=dones,
        last_value=jnp.float32(0.0),
        discount=0.9,
        gae_lambda=lam,
    )
    adv0, _ = run(0.0)
    td = rewards + 0.9 * np.append(values[1:], 0.0) - values
    np.testing.assert_allclose(adv0, td, rtol=1e-5, atol=1e-6)
    _, ret1 = run(1.0)
    mc = [sum(0.9**k * rewards[t + k] for k in range(6 - t)) for t in range(6)]
    np.testing.assert_allclose(ret1, mc, rtol=1e-5, atol=1e-5)


def test_gae_argument_errors():
    x = np.zeros(3)
    with pytest.raises(ValueError, match="exactly one of last_value"):
        gae(rewards=x, values=x, dones=x, discount=0.9, gae_lambda=0.9)
    with pytest.raises(ValueError, match="last_value must have shape"):
        gae(rewards=x, values=x, dones=x, last_value=np.zeros(2), discount=0.9, gae_lambda=0.9)
    with pytest.raises(ValueError, match="same"):
        gae(
            rewards=x,
            values=np.zeros(4),
            dones=x,
            last_value=np.float32(0),
            discount=0.9,
            gae_lambda=0.9,
        )
