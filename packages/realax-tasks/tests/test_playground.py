"""MuJoCo Playground in realax.tasks: names listed without importing the package, the Env
and task on a dm_control suite environment, its rendered GIF, and the errors for the
environments whose robot models are missing and for a missing OpenGL setting."""

import importlib.util
import os
import subprocess
import sys

# MuJoCo picks its OpenGL backend when first imported (see test_render.py)
os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import realax.tasks as rt  # noqa: E402
from PIL import Image  # noqa: E402

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mujoco_playground") is None,
    reason='needs pip install "realax-tasks[playground]"',
)
NAME = "CartpoleBalance"
STEPS = 9  # a GIF of 10 frames


def _menagerie_absent() -> bool:
    from realax.tasks._playground import menagerie_path

    path = menagerie_path()
    return path is not None and not path.exists()


def test_names_and_menagerie_reason_without_importing_playground():
    imported = "mujoco_playground" in sys.modules  # another test of this worker may have
    names = rt.registered_names("playground")
    assert NAME in names and "Go1Getup" in names and "PandaPickCube" in names
    if _menagerie_absent():
        reason = rt.env_info("playground/Go1Getup").reason
        assert reason is not None and "mujoco_menagerie" in reason and "git clone" in reason
    assert imported or "mujoco_playground" not in sys.modules


def test_bad_impl_is_refused_before_the_import():
    with pytest.raises(ValueError, match=r"impl must be one of \('jax', 'warp'\)"):
        rt.PlaygroundEnv(NAME, impl="cuda")
    with pytest.raises(ValueError, match="pass the MJX implementation as impl="):
        rt.PlaygroundEnv(NAME, config_overrides={"impl": "warp"})


@pytest.fixture(scope="module")
def env():
    return rt.make(NAME, render_size=(48, 64))


@pytest.mark.slow
def test_env_spec_wrap_and_task(env):
    spec = (env.suite, env.obs_shape, env.action_dims, env.discrete)
    assert spec == ("playground", (5,), 1, False)
    assert env.max_steps == 1000 and env.action_low.tolist() == [-1.0]
    assert rt.wrap(env.unwrapped).suite == "playground"
    policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
    task = rt.PlaygroundTask(env.replace(autoreset=False), STEPS, policy=policy)
    params, _ = rt.make_model_factory(policy, jnp.zeros(5), jax.random.key(0))
    fitness, info = jax.jit(task)(params, jax.random.key(1))
    assert int(info["episode_length"]) == STEPS and 0 < float(fitness) <= STEPS
    with pytest.raises(ValueError, match="impl and env_kwargs apply when env is a name"):
        rt.PlaygroundTask(env, impl="warp", policy=policy)


@pytest.mark.slow
def test_rendered_gif_has_a_frame_per_state_and_moves(env, tmp_path):
    policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
    task = rt.EnvTask(env, policy=policy, max_steps=STEPS)
    params, _ = rt.make_model_factory(policy, jnp.zeros(5), jax.random.key(0))
    params = jax.tree.map(lambda p: 30.0 * p, params)  # saturated pushes: the cart moves
    path = task.render(params, jax.random.key(2), tmp_path / "rollout.gif", fps=10)
    with Image.open(path) as image:
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    assert len(frames) == STEPS + 1 and frames[0].shape == (48, 64, 3)
    scene = [f[:-2] for f in frames]  # without the progress bar
    assert any(not np.array_equal(scene[0], s) for s in scene[1:]), "the scene never changes"


@pytest.mark.slow
@pytest.mark.skipif(not _menagerie_absent(), reason="mujoco_menagerie is installed")
def test_menagerie_env_offline_says_what_to_clone():
    # Playground tries `git clone` on first use; offline (as here) that fails after seconds
    with pytest.raises(RuntimeError, match="could not clone them") as caught:
        rt.make("Go1Getup")
    message = str(caught.value)
    assert "git clone https://github.com/deepmind/mujoco_menagerie.git" in message
    assert "checkout" in message and caught.value.__cause__ is None


@pytest.mark.slow
def test_playground_without_a_gl_backend_names_mujoco_gl():
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    code = (
        "import realax.tasks as rt; from realax.tasks._suites import adapter; "
        "adapter('playground').check_render(None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode != 0
    assert "Set MUJOCO_GL=egl" in out.stderr and "MUJOCO_GL=osmesa" in out.stderr
