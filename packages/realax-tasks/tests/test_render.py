"""Rendering a policy (Task.render, check_render) in the real suites; jumanji's multi-agent
environments as tasks."""

import importlib.util
import os
import subprocess
import sys

# MuJoCo picks its OpenGL backend when first imported; no test module imports brax at
# collection, so this is set before any test of the session imports it.
os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import realax.tasks as rt  # noqa: E402
from PIL import Image  # noqa: E402


def _task(name, max_steps, **env_kwargs):
    env = rt.make(name, autoreset=False, **env_kwargs)
    policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
    task = rt.EnvTask(env, policy=policy, max_steps=max_steps)
    key = jax.random.key(0)
    params = policy.init(key, jnp.zeros(env.obs_shape), policy.initialize(key), key)
    return task, params


def _decode(path):
    with Image.open(path) as image:
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    return frames


@pytest.mark.parametrize(
    "name, max_steps, env_kwargs",
    [
        ("CartPole-v1", 12, {}),  # drawn with pillow
        ("Breakout-MinAtar", 6, {}),  # MinAtar grid, numpy
        ("Snake-v1", 6, {"num_rows": 5, "num_cols": 5}),  # jumanji's animate
        ("inverted_pendulum", 6, {}),  # brax: MuJoCo's renderer (MUJOCO_GL=egl)
    ],
)
@pytest.mark.slow
def test_rendered_gif_has_a_frame_per_state_and_moves(tmp_path, name, max_steps, env_kwargs):
    task, params = _task(name, max_steps, **env_kwargs)
    key = jax.random.key(3)
    _, info = task.evaluate(params, key)
    path = task.render(params, key, tmp_path / "rollout.gif", fps=10)
    assert path == tmp_path / "rollout.gif"
    frames = _decode(path)
    # the reset state and one state per step of the same episode as evaluate's (jumanji's
    # Snake animates from the first step on)
    assert len(frames) == int(info["episode_length"]) + (name != "Snake-v1")
    assert frames[0].ndim == 3 and frames[0].shape[2] == 3
    scene = [f[:-2] for f in frames]  # without the progress bar along the bottom
    assert any(not np.array_equal(scene[0], s) for s in scene[1:]), "the scene never changes"


def test_render_caps_steps_and_checks_its_arguments(tmp_path):
    task, params = _task("CartPole-v1", 500)
    path = task.render(params, jax.random.key(0), tmp_path / "a.gif", max_steps=3)
    assert len(_decode(path)) <= 4
    with pytest.raises(ValueError, match=r"end in \.gif or \.mp4 \(got path=.*a\.png"):
        task.render(params, jax.random.key(0), tmp_path / "a.png")
    with pytest.raises(ValueError, match="fps must be a positive int"):
        rt.write_video([np.zeros((2, 2, 3), np.uint8)], tmp_path / "b.gif", fps=0)
    with pytest.raises(ValueError, match="has no renderer"):
        rt.check_render(rt.make("MemoryChain-bsuite"))


def test_mp4_without_ffmpeg_names_it_before_the_rollout(tmp_path, monkeypatch):
    # no ffmpeg anywhere: an empty PATH and imageio-ffmpeg unimportable
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    task, params = _task("CartPole-v1", 5)
    with pytest.raises(RuntimeError, match=r"needs the ffmpeg program.*realax-tasks\[render\]"):
        task.render(params, jax.random.key(0), tmp_path / "a.mp4")
    assert not (tmp_path / "a.mp4").exists()


def test_mp4_through_imageio_ffmpeg_decodes_to_a_frame_per_state(tmp_path, monkeypatch):
    import imageio_ffmpeg

    monkeypatch.setenv("PATH", str(tmp_path))  # the binary imageio-ffmpeg ships, not PATH's
    task, params = _task("CartPole-v1", 12)
    key = jax.random.key(3)
    _, info = task.evaluate(params, key)
    path = task.render(params, key, tmp_path / "a.mp4", fps=10)
    reader = imageio_ffmpeg.read_frames(str(path))
    size = next(reader)["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(size[1], size[0], 3) for f in reader]
    assert len(frames) == int(info["episode_length"]) + 1
    assert any(np.abs(frames[0].astype(int) - f).sum() > 0 for f in frames[1:])


@pytest.mark.skipif(importlib.util.find_spec("pygame") is not None, reason="pygame installed")
def test_gymnax_visualizer_without_pygame_names_the_extra():
    with pytest.raises(ImportError, match=r"'pygame'.*realax-tasks\[gymnax-render\]"):
        rt.check_render(rt.make("Acrobot-v1"))


@pytest.mark.slow
def test_brax_without_a_gl_backend_names_mujoco_gl():
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    code = "import realax.tasks as rt; rt.check_render(rt.make('inverted_pendulum'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode != 0
    assert "Set MUJOCO_GL=egl" in out.stderr and "MUJOCO_GL=osmesa" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Connector-v3", "LevelBasedForaging-v0", "SearchAndRescue-v0"])
def test_jumanji_multi_agent_envs_trace_with_the_team_reward(name):
    env = rt.make(name)
    key = jax.random.key(1)
    _, state = jax.eval_shape(env.reset, key)
    # tracing used to fail: per-agent rewards against the scalar carry (shapes only here)
    out = jax.eval_shape(env.step, key, state, env.sample_action(key))
    reward, term, trunc, info = out[2:]
    assert reward.shape == term.shape == trunc.shape == ()
    agents = (env.unwrapped.num_agents,)
    assert info["agent_rewards"].shape == info["agent_discounts"].shape == agents
    task, params = _task(name, 4)
    fitness, task_info = jax.eval_shape(task, params, key)
    assert fitness.shape == () and task_info["episode_length"].shape == ()


def test_jumanji_team_reward_is_the_sum_over_agents():
    env = rt.make("Connector-v3", autoreset=False)
    key = jax.random.key(2)
    _, state = jax.jit(env.reset)(key)
    _, _, reward, _, _, info = jax.jit(env.step)(key, state, env.sample_action(key))
    assert info["agent_rewards"].shape == (10,)
    assert float(reward) == pytest.approx(float(jnp.sum(info["agent_rewards"])))
