"""Distributions against closed forms computed independently in numpy (float64)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from realax.agents import Categorical, DiagGaussian, TanhDiagGaussian


def _np_log_normal(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


def test_categorical_log_prob_entropy_mode_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)) * 2.0
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    dist = Categorical(logits=jnp.asarray(logits, jnp.float32))
    actions = rng.integers(0, 5, size=6)
    np.testing.assert_allclose(
        dist.log_prob(jnp.asarray(actions)), np.log(probs[np.arange(6), actions]), rtol=1e-5
    )
    np.testing.assert_allclose(dist.entropy(), -(probs * np.log(probs)).sum(-1), rtol=1e-5)
    np.testing.assert_array_equal(dist.mode(), probs.argmax(-1))
    np.testing.assert_allclose(dist.probs, probs, rtol=1e-5)


def test_categorical_sample_frequencies():
    probs = np.array([0.1, 0.6, 0.3])
    dist = Categorical(logits=jnp.log(jnp.broadcast_to(jnp.asarray(probs), (20000, 3))))
    samples = dist.sample(seed=jax.random.key(0))
    assert samples.dtype == jnp.int32 and samples.shape == (20000,)
    freq = np.bincount(np.asarray(samples), minlength=3) / 20000
    np.testing.assert_allclose(freq, probs, atol=0.015)


def test_diag_gaussian_log_prob_and_entropy():
    rng = np.random.default_rng(1)
    loc, scale = rng.normal(size=(4, 3)), np.exp(rng.normal(size=(4, 3)) * 0.5)
    x = rng.normal(size=(4, 3))
    dist = DiagGaussian(loc=jnp.asarray(loc, jnp.float32), scale=jnp.asarray(scale, jnp.float32))
    np.testing.assert_allclose(
        dist.log_prob(jnp.asarray(x, jnp.float32)),
        _np_log_normal(x, loc, scale).sum(-1),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        dist.entropy(), (0.5 * np.log(2 * np.pi * np.e * scale**2)).sum(-1), rtol=1e-5
    )
    samples = DiagGaussian(loc=jnp.full((50000, 1), 2.0), scale=jnp.full((50000, 1), 0.5)).sample(
        seed=jax.random.key(0)
    )
    assert abs(float(samples.mean()) - 2.0) < 0.01 and abs(float(samples.std()) - 0.5) < 0.01


def test_tanh_gaussian_log_prob_is_change_of_variables():
    rng = np.random.default_rng(2)
    loc, scale = rng.normal(size=(5, 2)), np.exp(rng.normal(size=(5, 2)) * 0.3)
    actions = rng.uniform(-0.99, 0.99, size=(5, 2))
    dist = TanhDiagGaussian(
        loc=jnp.asarray(loc, jnp.float32), scale=jnp.asarray(scale, jnp.float32)
    )
    # p(a) = N(atanh a) * |d atanh(a) / da| = N(atanh a) / (1 - a^2)
    expected = (_np_log_normal(np.arctanh(actions), loc, scale) - np.log1p(-(actions**2))).sum(-1)
    np.testing.assert_allclose(
        dist.log_prob(jnp.asarray(actions, jnp.float32)), expected, rtol=1e-4
    )
    np.testing.assert_allclose(dist.mode(), np.tanh(loc), rtol=1e-6)


def test_tanh_gaussian_density_integrates_to_one_and_sampling_is_consistent():
    dist = TanhDiagGaussian(loc=jnp.array([0.7]), scale=jnp.array([0.8]))
    grid = np.linspace(-1 + 1e-6, 1 - 1e-6, 200001)
    density = np.exp(np.asarray(jax.vmap(lambda a: dist.log_prob(a[None]))(jnp.asarray(grid))))
    assert abs(np.trapezoid(density, grid) - 1.0) < 1e-3

    many = TanhDiagGaussian(loc=jnp.full((4000, 3), 0.3), scale=jnp.full((4000, 3), 1.5))
    actions, log_p = many.sample_and_log_prob(seed=jax.random.key(3))
    assert actions.shape == (4000, 3) and log_p.shape == (4000,)
    assert bool(jnp.all(jnp.abs(actions) <= 1.0))
    # log-prob from the pre-tanh sample equals the log-prob of the squashed action
    # (away from the saturated ends where float32 atanh loses precision)
    inside = np.all(np.abs(np.asarray(actions)) < 0.99, axis=-1)
    np.testing.assert_allclose(
        np.asarray(log_p)[inside], np.asarray(many.log_prob(actions))[inside], rtol=1e-3, atol=1e-3
    )
    # the sample mean matches E[tanh(u)] computed by quadrature
    u = np.linspace(0.3 - 10 * 1.5, 0.3 + 10 * 1.5, 20001)
    mean = np.trapezoid(np.tanh(u) * np.exp(_np_log_normal(u, 0.3, 1.5)), u)
    assert abs(float(actions.mean()) - mean) < 0.02


def test_tanh_gaussian_log_prob_is_finite_at_the_bounds():
    dist = TanhDiagGaussian(loc=jnp.zeros(1), scale=jnp.ones(1))
    assert bool(jnp.all(jnp.isfinite(dist.log_prob(jnp.array([[1.0], [-1.0]])))))
    # large pre-tanh values keep a finite, exact log-det (no log(0))
    big = TanhDiagGaussian(loc=jnp.array([30.0]), scale=jnp.array([1e-3]))
    _, log_p = big.sample_and_log_prob(seed=jax.random.key(0))
    assert math.isfinite(float(log_p))
