"""Craftax, XLand-MiniGrid and Navix: dimensions, a tiny ES or PPO run on each, a rendered GIF
from each, xminigrid's rulesets and benchmarks, a missing extra naming itself.

Sizes are the smallest that still show the behaviour (2 generations of 4, 6-step episodes):
Craftax's compile is most of this module's time (one test, slow)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from PIL import Image

# every test here imports a suite (navix alone takes ~10 s) or compiles one
pytestmark = pytest.mark.slow


def _decode(path):
    with Image.open(path) as image:
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    return frames


def _policy_params(env):
    policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))
    return policy, params


def _evolve(task, params):
    from realax.train import EvosaxTrainer, FitnessShaper

    trainer = EvosaxTrainer(
        train_steps=2,
        strategy="SNES",
        task=task,
        params_like=params,
        popsize=4,
        fitness_shaper=FitnessShaper(maximize=True),
    )
    state, metrics = trainer.init_and_train(jax.random.key(1))
    assert metrics["fitness_mean"].shape == (2,)
    assert np.all(np.isfinite(np.asarray(metrics["fitness_mean"])))
    return state.mean


def _always(params, action):
    """``params`` of a policy that always picks ``action`` (a turn or a move: the scene
    changes at every step, whatever the evolved policy would do)."""
    head = params["params"]["action_head"]
    bias = jnp.zeros_like(head["bias"]).at[action].set(10.0)
    head = {"bias": bias, "kernel": jnp.zeros_like(head["kernel"])}
    return {"params": {**params["params"], "action_head": head}}


def _render_moves(task, params, path, steps):
    params = _always(params, 1)  # xminigrid, navix: turn right; Craftax: move left
    key = jax.random.key(3)
    _, info = task.evaluate(params, key)
    out = task.render(params, key, path, fps=10)
    frames = _decode(out)
    assert len(frames) == int(info["episode_length"]) + 1 == steps + 1  # reset + each step
    assert frames[0].ndim == 3 and frames[0].shape[2] == 3
    scene = [f[:-2] for f in frames]  # without the progress bar along the bottom
    assert any(not np.array_equal(scene[0], s) for s in scene[1:]), "the scene never changes"


def test_dimensions_from_the_suites_spaces():
    assert rt.get_env_dimensions("MiniGrid-Empty-5x5") == (98, 6, True)  # 7x7 view, 2 layers
    assert rt.get_env_dimensions("XLand-MiniGrid-R1-9x9") == (50, 6, True)  # 5x5 view
    assert rt.get_env_dimensions("Navix-Empty-5x5-v0") == (75, 7, True)
    assert rt.get_env_dimensions("Craftax-Classic-Symbolic-v1") == (1345, 17, True)
    env = rt.make("xminigrid/MiniGrid-Empty-5x5")
    assert (env.suite, env.obs_shape, env.obs_dims, env.max_steps) == ("xminigrid", (98,), 98, 100)
    assert rt.make("Navix-Empty-5x5-v0", episode_length=20).max_steps == 20
    assert set(rt.registered_names("craftax")) == {
        "Craftax-Classic-Symbolic-v1",
        "Craftax-Symbolic-v1",
    }
    assert "Navix-DoorKey-5x5-v0" in rt.registered_names("navix")
    assert "MiniGrid-DoorKey-5x5" in rt.registered_names()


def test_craftax_names_are_the_ones_craftax_makes():
    from craftax.craftax_env import make_craftax_env_from_name

    for name in rt.registered_names("craftax"):
        assert make_craftax_env_from_name(name, auto_reset=False).num_actions in (17, 43)


def test_xminigrid_hand_made_ruleset_and_missing_benchmark(tmp_path, monkeypatch):
    from xminigrid import benchmarks
    from xminigrid.core.constants import TILES_REGISTRY, Colors, Tiles
    from xminigrid.core.goals import AgentNearGoal
    from xminigrid.core.rules import EmptyRule
    from xminigrid.types import RuleSet

    ball = TILES_REGISTRY[Tiles.BALL, Colors.YELLOW]
    ruleset = RuleSet(
        goal=AgentNearGoal(tile=ball).encode(),
        rules=EmptyRule().encode()[None, ...],
        init_tiles=jnp.array((ball,)),
    )
    env = rt.make("XLand-MiniGrid-R1-9x9", ruleset=ruleset, autoreset=False)
    _, state = jax.jit(env.reset)(jax.random.key(0))
    assert int((state.inner.state.grid == ball).all(-1).sum()) == 1  # the ball is placed
    with pytest.raises(ValueError, match="takes no ruleset"):
        rt.make("MiniGrid-Empty-5x5", ruleset=ruleset)
    monkeypatch.setattr(benchmarks, "DATA_PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"Hugging Face hub.*load_benchmark\('trivial-21k'\)"):
        rt.make("XLand-MiniGrid-R1-9x9", benchmark="trivial-21k")
    with pytest.raises(ValueError, match="benchmark must be one of"):
        rt.make("XLand-MiniGrid-R1-9x9", benchmark="trivial")


def test_xminigrid_evolves_and_renders(tmp_path):
    env = rt.make("MiniGrid-Empty-5x5", autoreset=False)
    policy, params = _policy_params(env)
    task = rt.EnvTask(env, policy=policy, max_steps=6)
    mean = _evolve(task, params)
    _render_moves(task, mean, tmp_path / "xminigrid.gif", 6)


def test_navix_trains_ppo_and_renders(tmp_path):
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer

    trainer = OnPolicyTrainer(
        PPO,
        "Navix-Empty-5x5-v0",
        num_envs=2,
        num_steps=8,
        train_steps=2,
        agent_kwargs={"hidden_dims": (8,), "num_minibatches": 1, "update_epochs": 1},
    )
    state, metrics = trainer.init_and_train(jax.random.key(0))
    assert int(state.env_steps) == 32 and np.all(np.isfinite(np.asarray(metrics["loss"])))
    env = rt.make("Navix-Empty-5x5-v0", autoreset=False)
    policy, params = _policy_params(env)
    _render_moves(rt.EnvTask(env, policy=policy, max_steps=6), params, tmp_path / "nx.gif", 6)


def test_craftax_classic_evolves_and_renders(tmp_path):
    # the bulk of this module's time: Craftax's step compiles for ~30 s on an idle core, and
    # the first render processes Craftax's textures once per install (cached by Craftax)
    env = rt.make("Craftax-Classic-Symbolic-v1", autoreset=False)
    policy, params = _policy_params(env)
    task = rt.EnvTask(env, policy=policy, max_steps=5)
    mean = _evolve(task, params)
    _render_moves(task, mean, tmp_path / "craftax.gif", 5)


def test_missing_grid_suites_name_their_extras(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            for mod in ("craftax", "craftax.craftax_env", "xminigrid", "navix"):
                sys.modules[mod] = None
            import realax.tasks as rt
            for name in ("craftax/Craftax-Classic-Symbolic-v1", "xminigrid/MiniGrid-Empty-5x5",
                         "navix/Navix-Empty-5x5-v0"):
                try:
                    rt.make(name)
                except ImportError as e:
                    print("ERR", e)
            """
        )
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("ERR")]
    assert len(errors) == 3, out.stdout
    for line, extra in zip(errors, ("craftax", "xminigrid", "navix"), strict=True):
        assert f'pip install "realax-tasks[{extra}]"' in line
