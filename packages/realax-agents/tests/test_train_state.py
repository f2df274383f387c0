"""TrainState: calling, method dispatch, optimisation, extra variables, transformations."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from realax.agents import MLP, TrainState, nonpytree_field, target_update


class AutoEncoder(nn.Module):
    latent: int = 2
    features: int = 4

    def setup(self):
        self.encoder = nn.Dense(self.latent)
        self.decoder = nn.Dense(self.features)

    def __call__(self, x):
        return self.decode(self.encode(x))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


class BNNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(3)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dense(1)(x)


def _ae_state(tx=None, seed=0):
    x = jnp.ones((5, 4))
    params = AutoEncoder().init(jax.random.key(seed), x)["params"]
    return TrainState.create(AutoEncoder(), params, tx=tx), x


def test_create_fields_and_static_parts():
    state, _ = _ae_state(tx=optax.adam(1e-3))
    assert state.step.dtype == jnp.int32 and int(state.step) == 0
    assert state.apply_fn == state.model_def.apply
    assert state.extra_variables == {}
    assert state.opt_state is not None
    # model_def, apply_fn and tx are static: leaves are params, opt_state and step only.
    n_leaves = len(jax.tree.leaves(state))
    expected = 1 + len(jax.tree.leaves(state.params)) + len(jax.tree.leaves(state.opt_state))
    assert n_leaves == expected


def test_call_with_other_params_equals_state_created_with_them():
    state, x = _ae_state()
    other_params = AutoEncoder().init(jax.random.key(7), x)["params"]
    other_state = TrainState.create(AutoEncoder(), other_params)
    chex.assert_trees_all_close(state(x, params=other_params), other_state(x))
    assert not np.allclose(state(x), other_state(x))


def test_method_by_name_callable_and_attribute_sugar():
    state, x = _ae_state()
    z_expected = x @ state.params["encoder"]["kernel"] + state.params["encoder"]["bias"]
    chex.assert_trees_all_close(state(x, method="encode"), z_expected, rtol=1e-6)
    chex.assert_trees_all_close(state.encode(x), z_expected, rtol=1e-6)
    chex.assert_trees_all_close(state(x, method=lambda m, v: m.encode(v)), z_expected, rtol=1e-6)
    z = state.encode(x)
    chex.assert_trees_all_close(state.decode(z), state(x), rtol=1e-6)
    # sugar also accepts other params
    other = jax.tree.map(jnp.zeros_like, state.params)
    chex.assert_trees_all_close(state.encode(x, params=other), jnp.zeros((5, 2)))


def test_attribute_sugar_only_for_module_methods():
    state, _ = _ae_state()
    with pytest.raises(AttributeError, match="no attribute 'not_a_method'"):
        state.not_a_method  # noqa: B018
    # flax.linen.Module's own API is never dispatched to
    with pytest.raises(AttributeError):
        state.init  # noqa: B018
    with pytest.raises(AttributeError, match="latent"):
        state(jnp.ones(4), method="latent")  # a field, not a method


def test_apply_loss_fn_matches_hand_written_grad_and_optax_step():
    tx = optax.adam(1e-2)
    state, x = _ae_state(tx=tx)
    y = jnp.arange(20.0).reshape(5, 4) / 20

    def loss_fn(params):
        loss = jnp.mean((state(x, params=params) - y) ** 2)
        return loss, {"loss": loss}

    new_state, info = jax.jit(lambda s: s.apply_loss_fn(loss_fn=loss_fn, has_aux=True))(state)

    grads = jax.grad(lambda p: loss_fn(p)[0])(state.params)
    updates, opt_state = tx.update(grads, tx.init(state.params), state.params)
    expected_params = optax.apply_updates(state.params, updates)
    chex.assert_trees_all_close(new_state.params, expected_params, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(new_state.opt_state, opt_state, rtol=1e-6, atol=1e-7)
    assert int(new_state.step) == 1
    chex.assert_trees_all_close(info["loss"], loss_fn(state.params)[0])

    # without aux the method returns the state only, and apply_gradients matches too
    plain = state.apply_loss_fn(loss_fn=lambda p: loss_fn(p)[0])
    chex.assert_trees_all_close(plain.params, expected_params, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(
        state.apply_gradients(grads=grads).params, expected_params, rtol=1e-6, atol=1e-7
    )


def test_apply_loss_fn_descends():
    state, _ = _ae_state(tx=optax.adam(1e-2))
    kx, ka, kb = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(kx, (32, 4))
    # a rank-2 linear target: reachable by the autoencoder, optimum loss 0
    y = x @ jax.random.normal(ka, (4, 2)) @ jax.random.normal(kb, (2, 4))

    def loss(params):
        return jnp.mean((state(x, params=params) - y) ** 2)

    @jax.jit
    def step(s):
        return s.apply_loss_fn(loss_fn=lambda p: jnp.mean((s(x, params=p) - y) ** 2))

    first = loss(state.params)
    for _ in range(300):
        state = step(state)
    assert loss(state.params) < 0.05 * first
    assert int(state.step) == 300


def test_apply_gradients_without_optimiser_raises():
    state, _ = _ae_state()
    with pytest.raises(ValueError, match="no optimiser"):
        state.apply_gradients(grads=state.params)


def test_create_rejects_full_variables_and_bad_module():
    x = jnp.ones((2, 4))
    variables = BNNet().init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="extra_variables"):
        TrainState.create(BNNet(), variables)
    with pytest.raises(TypeError, match="model_def must be a flax.linen.Module"):
        TrainState.create(lambda v: v, variables["params"])
    with pytest.raises(TypeError, match="tx must be an optax.GradientTransformation"):
        TrainState.create(BNNet(), variables["params"], tx=1e-3)


def _bn_state(tx=None):
    x = jax.random.normal(jax.random.key(1), (16, 4)) * 3.0 + 1.0
    variables = BNNet().init(jax.random.key(0), x)
    state = TrainState.create(
        BNNet(),
        variables["params"],
        tx=tx,
        extra_variables={"batch_stats": variables["batch_stats"]},
    )
    return state, x


def test_extra_variables_passed_to_call_change_the_output():
    state, x = _bn_state()
    out_own = state(x)
    stats = state.extra_variables["batch_stats"]
    shifted = jax.tree.map(lambda v: v + 2.0, stats)
    out_shifted = state(x, extra_variables={"batch_stats": shifted})
    assert not np.allclose(out_own, out_shifted)
    # ... and equal a state that stores those statistics
    stored = state.replace(extra_variables={"batch_stats": shifted})
    chex.assert_trees_all_close(out_shifted, stored(x))


def test_mutable_batch_stats_are_updated_through_call_and_apply_loss_fn():
    state, x = _bn_state(tx=optax.sgd(0.1))
    out, updates = state(x, train=True, mutable=["batch_stats"])
    assert out.shape == (16, 1)
    # the running mean moved toward the batch mean of the first layer's output (momentum 0.5)
    h = x @ state.params["Dense_0"]["kernel"] + state.params["Dense_0"]["bias"]
    expected_mean = 0.5 * state.extra_variables["batch_stats"]["BatchNorm_0"][
        "mean"
    ] + 0.5 * h.mean(0)
    chex.assert_trees_all_close(
        updates["batch_stats"]["BatchNorm_0"]["mean"], expected_mean, rtol=1e-5
    )

    def loss_fn(params):
        out, updates = state(x, params=params, train=True, mutable=["batch_stats"])
        loss = jnp.mean(out**2)
        return loss, ({"loss": loss}, updates)

    new_state, info = jax.jit(
        lambda s: s.apply_loss_fn(loss_fn=loss_fn, has_aux=True, has_updates=True)
    )(state)
    chex.assert_trees_all_close(new_state.extra_variables["batch_stats"], updates["batch_stats"])
    assert float(info["loss"]) > 0
    # the stored statistics are the ones used in inference mode afterwards
    chex.assert_trees_all_close(
        new_state(x), state(x, params=new_state.params, extra_variables=new_state.extra_variables)
    )
    # has_updates without aux: loss_fn returns (loss, updates)
    only = state.apply_loss_fn(
        loss_fn=lambda p: (loss_fn(p)[0], loss_fn(p)[1][1]), has_updates=True
    )
    chex.assert_trees_all_close(only.extra_variables, new_state.extra_variables)
    # apply_gradients can store collections directly as well
    grads = jax.tree.map(jnp.zeros_like, state.params)
    direct = state.apply_gradients(grads=grads, extra_variables=updates)
    chex.assert_trees_all_close(direct.extra_variables["batch_stats"], updates["batch_stats"])


def test_works_under_vmap_over_an_ensemble_of_params():
    x = jnp.ones((3, 4))
    model_def = MLP(hidden_dims=(8, 2))
    keys = jax.random.split(jax.random.key(0), 5)
    params = jax.vmap(lambda k: model_def.init(k, x)["params"])(keys)
    states = jax.vmap(lambda p: TrainState.create(model_def, p, tx=optax.sgd(0.1)))(params)
    outs = jax.vmap(lambda s: s(x))(states)
    assert outs.shape == (5, 3, 2)
    single = TrainState.create(model_def, jax.tree.map(lambda p: p[2], params))
    chex.assert_trees_all_close(outs[2], single(x), rtol=1e-6)

    new_states = jax.jit(
        jax.vmap(lambda s: s.apply_loss_fn(loss_fn=lambda p: jnp.sum(s(x, params=p) ** 2)))
    )(states)
    assert new_states.step.tolist() == [1] * 5


def test_target_update_polyak_and_hard():
    state, x = _ae_state()
    target = state.replace(params=jax.tree.map(jnp.zeros_like, state.params))
    half = target_update(state, target, 0.25)
    chex.assert_trees_all_close(
        half.params, jax.tree.map(lambda p: 0.25 * p, state.params), rtol=1e-6
    )
    hard = target_update(state, target, 1.0)
    chex.assert_trees_all_close(hard.params, state.params)
    none = target_update(state, target, 0.0)
    chex.assert_trees_all_close(none.params, target.params)


def test_nonpytree_field_is_static():
    from flax import struct

    class Holder(struct.PyTreeNode):
        w: jax.Array
        name: str = nonpytree_field(default="x")

    h = Holder(w=jnp.ones(2), name="policy")
    leaves, treedef = jax.tree.flatten(h)
    assert len(leaves) == 1
    assert jax.tree.unflatten(treedef, leaves).name == "policy"


def test_orbax_round_trip_restores_an_identical_state_that_trains_on_identically(tmp_path):
    # orbax-checkpoint comes with flax (a dependency of realax-agents).
    import orbax.checkpoint as ocp

    state, x = _bn_state(tx=optax.adam(1e-2))

    def loss_fn(s):
        def loss(params):
            out, updates = s(x, params=params, train=True, mutable=["batch_stats"])
            return jnp.mean(out**2), updates

        return loss

    step = jax.jit(lambda s: s.apply_loss_fn(loss_fn=loss_fn(s), has_updates=True))
    state = step(step(state))  # non-trivial optimiser state, step and batch statistics
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "state", state)
        ckptr.wait_until_finished()
        restored = ckptr.restore(
            tmp_path / "state", jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        )
    assert type(restored) is TrainState and restored.model_def == state.model_def
    assert int(restored.step) == 2
    chex.assert_trees_all_equal(restored, state)
    chex.assert_trees_all_equal(step(restored), step(state))
    chex.assert_trees_all_equal(restored(x), state(x))
