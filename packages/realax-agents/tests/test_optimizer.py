"""The agents' optimiser and categorical log-probabilities match their plain-optax/gather forms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from realax.agents import Categorical
from realax.agents import _common as c


def _tree(key, scale):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "dense": {"kernel": scale * jax.random.normal(k1, (4, 8)), "bias": jnp.zeros(8)},
        "head": {
            "kernel": scale * jax.random.normal(k2, (8, 2)),
            "bias": jax.random.normal(k3, (2,)),
        },
    }


@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipping active / inactive
def test_flat_clipped_adam_equals_optax_on_the_pytree(max_norm):
    params = _tree(jax.random.key(0), 1.0)
    ours = c.make_optimizer(3e-3, max_norm, eps=1e-5, flat=True)
    ref = optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(3e-3, eps=1e-5))
    s_ours, s_ref = ours.init(params), ref.init(params)
    p_ours = p_ref = params
    for i in range(5):
        grads = _tree(jax.random.key(i + 1), 2.0)
        u_ours, s_ours = ours.update(grads, s_ours, p_ours)
        u_ref, s_ref = ref.update(grads, s_ref, p_ref)
        assert jax.tree.structure(u_ours) == jax.tree.structure(u_ref)
        p_ours, p_ref = optax.apply_updates(p_ours, u_ours), optax.apply_updates(p_ref, u_ref)
    for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_global_norm_is_optax_norm():
    tree = _tree(jax.random.key(3), 3.0)
    np.testing.assert_allclose(c.global_norm(tree), optax.tree.norm(tree), rtol=1e-6)
    assert float(c.global_norm({})) == 0.0


def test_categorical_log_prob_equals_a_gather_also_with_masked_actions():
    logits = jnp.array([[0.3, -1.0, 2.0], [1.0, -jnp.inf, 0.0]])
    actions = jnp.array([2, 0])
    dist = Categorical(logits=logits)
    want = jnp.take_along_axis(jax.nn.log_softmax(logits), actions[:, None], axis=-1)[:, 0]
    np.testing.assert_array_equal(dist.log_prob(actions), want)
    grad = jax.grad(lambda x: Categorical(logits=x).log_prob(actions).sum())(logits)
    assert bool(jnp.all(jnp.isfinite(grad)))
