"""Listings without the network: registered_names, env_info, get_env_dimensions, the on-disk
cache; unknown names; the suites' noise; brax's backend choice."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import realax.tasks as rt

# A child preamble that makes any network use fail loudly (and be counted).
_NO_NETWORK = """
import socket
_calls = []
def _refuse(*args, **kwargs):
    _calls.append(args)
    raise OSError("network use during a listing")
socket.socket.connect = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
"""


def _child(code, cache, timeout=900):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    script = _NO_NETWORK + textwrap.dedent(code)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.slow
def test_listings_never_use_the_network_and_report_downloads(tmp_path):
    out = _child(
        """
        import realax.tasks as rt
        for name in ("jumanji/Sokoban-v0", "gymnax/MNISTBandit-bsuite"):
            info = rt.env_info(name)
            print("INFO", info.name, info.available, info.reason)
        print("DIMS", rt.get_env_dimensions("Game2048-v1"))
        print("NAMES", len(rt.registered_names()))
        print("CALLS", len(_calls))
        """,
        tmp_path,
    )
    lines = out.stdout.splitlines()
    sokoban = next(line for line in lines if line.startswith("INFO Sokoban-v0"))
    assert "False" in sokoban and "Hugging Face hub" in sokoban and sokoban.endswith(".")
    mnist = next(line for line in lines if line.startswith("INFO MNISTBandit-bsuite"))
    assert "MNIST" in mnist  # unavailable offline, or available when gymnax's copy is on disk
    assert "DIMS (20, 4, True)" in lines and "CALLS 0" in lines
    names = int(next(line for line in lines if line.startswith("NAMES")).split()[1])
    assert names == len(rt.registered_names())


@pytest.mark.slow
def test_a_warm_cache_answers_without_importing_or_building(tmp_path):
    # cold: the name is looked up in gymnax, then brax, then jumanji, which builds it once
    _child('import realax.tasks as rt; rt.get_env_dimensions("Game2048-v1")', tmp_path)
    (path,) = (tmp_path / "realax").glob("tasks-v1-jumanji-*.json")
    data = json.loads(path.read_text())
    assert "Snake-v1" in data["names"] and data["envs"]["Game2048-v1"]["obs_shape"] == [20]
    out = _child(
        """
        import sys
        import realax.tasks as rt
        print("DIMS", rt.get_env_dimensions("Game2048-v1"))
        print("NAMES", "Snake-v1" in rt.registered_names("jumanji"))
        print("IMPORTED", [s for s in ("gymnax", "brax", "jumanji") if s in sys.modules])
        """,
        tmp_path,
    )
    assert out.stdout.splitlines() == ["DIMS (20, 4, True)", "NAMES True", "IMPORTED []"]


@pytest.mark.slow
def test_two_processes_filling_the_cache_keep_every_entry(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "import realax.tasks as rt, sys; [rt.env_info(n) for n in sys.argv[1:]]"
    names = [["CartPole-v1", "Acrobot-v1", "Pendulum-v1"], ["MountainCar-v0", "Catch-bsuite"]]
    procs = [subprocess.Popen([sys.executable, "-c", code, *n], env=env) for n in names]
    assert [p.wait(timeout=900) for p in procs] == [0, 0]
    (path,) = (tmp_path / "realax").glob("tasks-v1-gymnax-*.json")
    entries = json.loads(path.read_text())["envs"]
    assert set(entries) == {n for group in names for n in group}
    assert entries["CartPole-v1"] == {"obs_shape": [4], "action_dims": 2, "discrete": True}
    assert not list((tmp_path / "realax").glob("*.tmp"))


def test_env_info_reports_a_whole_sentence_reason_and_dimensions():
    info = rt.env_info("gymnax/CartPole-v1")
    assert info == rt.EnvInfo("CartPole-v1", "gymnax", (4,), 2, True, None)
    assert info.available and info.obs_dims == 4
    assert rt.env_info("RobotWarehouse-v0").action_dims == (5, 5, 5, 5)
    sokoban = rt.env_info("Sokoban-v0")
    assert not sokoban.available and sokoban.obs_shape is None
    assert sokoban.reason.endswith(".") and "realax.tasks.make('Sokoban-v0')" in sokoban.reason
    with pytest.raises(RuntimeError, match="Hugging Face hub"):
        rt.get_env_dimensions("Sokoban-v0")


def test_unknown_names_point_to_the_listing():
    for name in ("CartPole-v2", "brax/hopperr", "Snak-v1"):
        with pytest.raises(ValueError, match="Did you mean") as error:
            rt.env_info(name)
        assert "`realax envs`" in str(error.value)
        assert "realax.tasks.registered_names()" in str(error.value)
    with pytest.raises(ValueError, match="'hopper'"):
        rt.make("brax/hopperr")
    with pytest.raises(ValueError, match="suite must be one of"):
        rt.registered_names("gym")


@pytest.mark.slow
def test_suites_print_no_noise_and_brax_names_the_backend_it_picked(tmp_path):
    out = _child(
        """
        import warnings
        import realax.tasks as rt
        cheetah = rt.make("halfcheetah")
        swimmer = rt.make("swimmer")
        print("BACKENDS", cheetah.unwrapped.backend, swimmer.unwrapped.backend)
        task = rt.BraxTask("swimmer", 5, policy=rt.MLPPolicy.from_env(swimmer))
        print("TASK", task.env.unwrapped.backend)
        warnings.warn("a warning of the user's own")
        """,
        tmp_path,
    )
    assert "BACKENDS positional generalized" in out.stdout and "TASK generalized" in out.stdout
    for noise in ("Failed to import warp", "Failed to import mujoco_warp"):
        assert noise not in out.stdout + out.stderr
    assert "not actively being maintained" not in out.stderr
    assert "settotalmass" not in out.stderr
    assert "a warning of the user's own" in out.stderr  # other warnings still show
    notes = [line for line in out.stderr.splitlines() if "using backend=" in line]
    assert (
        notes
        == [
            "realax.tasks: brax environment 'swimmer' does not support the default backend "
            "'positional'; using backend='generalized'."
        ]
        * 2
    )


def test_brax_names_match_what_the_installed_brax_registers():
    # realax.tasks lists brax's built-in names itself (brax has no public listing); this
    # canary reads brax's private table, in the tests only, so a new brax version that
    # adds or renames environments fails here instead of silently going unlisted.
    import brax.envs

    assert sorted(rt.registered_names("brax")) == sorted(brax.envs._envs)


def test_the_mnist_folder_is_where_gymnax_keeps_it():
    import inspect

    from gymnax.utils import load_mnist
    from realax.tasks import _gymnax

    default = inspect.signature(load_mnist.load_mnist).parameters["directory"].default
    assert default == _gymnax.MNIST_DIR


@pytest.mark.parametrize(
    "name", ["Game2048-v1", "Snake-v1", "Maze-v0", "RobotWarehouse-v0", "SearchAndRescue-v0"]
)
@pytest.mark.slow
def test_jumanji_sizes_from_specs_match_the_built_environment(name):
    from realax.tasks import _jumanji

    built = rt.make(name, autoreset=False)
    assert _jumanji._describe(name) == rt.EnvInfo.from_spec(built.spec)
