"""mask_observation: the same environment, observing only some entries."""

import jax
import numpy as np
import pytest
import realax.tasks as rt


def test_masked_env_shows_the_kept_entries_of_the_same_dynamics():
    full = rt.make("CartPole-v1", max_steps=3)
    masked = rt.mask_observation(full, keep=[2, 0])
    assert masked.obs_shape == (2,) and full.obs_shape == (4,)
    assert masked.action_dims == 2 and masked.max_steps == 3 and masked.name == full.name
    obs_f, s_f = full.reset(jax.random.key(0))
    obs_m, s_m = masked.reset(jax.random.key(0))
    np.testing.assert_array_equal(obs_m, obs_f[np.array([2, 0])])
    step_f, step_m = jax.jit(full.step), jax.jit(masked.step)
    for t in range(3):  # the third step truncates: final_obs is masked too, then a reset
        k = jax.random.key(t + 1)
        obs_f, s_f, r_f, term_f, trunc_f, info_f = step_f(k, s_f, 1)
        obs_m, s_m, r_m, term_m, trunc_m, info_m = step_m(k, s_m, 1)
        np.testing.assert_array_equal(obs_m, obs_f[np.array([2, 0])])
        np.testing.assert_array_equal(info_m["final_obs"], info_f["final_obs"][np.array([2, 0])])
        assert (float(r_m), bool(term_m), bool(trunc_m)) == (
            float(r_f),
            bool(term_f),
            bool(trunc_f),
        )
    assert bool(trunc_m)


@pytest.mark.parametrize("keep", [[], [0, 0], [4], [-1], "02", [True]])
def test_bad_keep_names_the_fix(keep):
    with pytest.raises((ValueError, TypeError), match=r"keep=\[0, 2\]"):
        rt.mask_observation(rt.make("CartPole-v1"), keep=keep)
    with pytest.raises(TypeError, match="must be a realax.tasks.Env"):
        rt.mask_observation("CartPole-v1", keep=[0])
