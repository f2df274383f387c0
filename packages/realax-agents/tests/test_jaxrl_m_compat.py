"""jaxrl_m spellings that realax accepts: `realax.agents.typing`, `apply_gradients(**kwargs)`,
agents updated from `Dataset` batches."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from realax.agents import Dataset, DiscreteBC, TrainState
from realax.agents import typing as rtyping


class CountingState(TrainState):
    """A subclass with an extra field, as jaxrl_m users write them."""

    updates_seen: int = 0


def _state(cls=TrainState):
    x = jnp.ones((2, 3))
    params = nn.Dense(1).init(jax.random.key(0), x)["params"]
    return cls.create(nn.Dense(1), params, tx=optax.sgd(0.1)), x


def test_step_starts_at_zero_and_counts_updates():
    # jaxrl_m's TrainState.create starts at step=1; realax's at 0 (the number of updates)
    state, x = _state()
    assert int(state.step) == 0
    grads = jax.grad(lambda p: state(x, params=p).sum())(state.params)
    assert int(state.apply_gradients(grads=grads).step) == 1


def test_apply_gradients_passes_extra_fields_to_replace():
    state, x = _state(CountingState)
    grads = jax.grad(lambda p: state(x, params=p).sum())(state.params)
    step = jax.jit(lambda s, g: s.apply_gradients(grads=g, updates_seen=s.updates_seen + 1))
    new = step(state, grads)
    assert isinstance(new, CountingState)
    assert int(new.updates_seen) == 1 and int(new.step) == 1
    expected = optax.apply_updates(state.params, jax.tree.map(lambda g: -0.1 * g, grads))
    for got, want in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # with extra_variables too
    both = state.apply_gradients(grads=grads, extra_variables={"stats": {"n": 1}}, updates_seen=7)
    assert both.extra_variables == {"stats": {"n": 1}} and int(both.updates_seen) == 7


def test_apply_gradients_rejects_fields_it_sets():
    state, x = _state()
    grads = jax.tree.map(jnp.zeros_like, state.params)
    with pytest.raises(TypeError, match=r"sets \['step'\] itself"):
        state.apply_gradients(grads=grads, step=5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'not_a_field'"):
        state.apply_gradients(grads=grads, not_a_field=1)


def test_typing_names_of_jaxrl_m():
    for name in ["Batch", "PRNGKey", "Params", "InfoDict", "Shape", "Dtype", "Array", "Data"]:
        assert hasattr(rtyping, name), name
    assert "ModuleMethod" in rtyping.__all__


@pytest.mark.slow
def test_typing_checks_with_mypy(tmp_path):
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp
        from realax.agents import Dataset
        from realax.agents.typing import Batch, InfoDict, Params, PRNGKey

        def update(batch: Batch, params: Params, key: PRNGKey) -> InfoDict:
            return {"r": jnp.mean(batch["rewards"])}

        update(Dataset.create(rewards=jnp.ones(2)), {"w": jnp.ones(1)}, jax.random.key(0))
        update({"rewards": jnp.ones(2)}, {"w": jnp.ones(1)}, jax.random.key(0))
        """
    )
    path = tmp_path / "user_code.py"
    path.write_text(code)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "c"),
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_discrete_bc_updates_from_dataset_samples():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(256, 4)).astype(np.float32)
    acts = (obs[:, 0] > 0).astype(np.int32)
    ds = Dataset.create(observations=obs, actions=acts)
    agent = DiscreteBC.create(jax.random.key(0), obs[:1], acts[:1], n_actions=2)
    agent, info = agent.update(ds.sample(jax.random.key(1), 64))
    assert np.isfinite(float(info["loss"]))
