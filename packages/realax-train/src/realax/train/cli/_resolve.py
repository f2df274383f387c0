"""From parsed arguments to a complete, validated configuration (standard library only)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ._config import NONNEGATIVE, POSITIVE, CliError, check_config, load_config_file, read_toml
from ._folders import CONFIG_FILE
from ._qd_schema import QDConfig
from ._quiet import wandb_logged_in
from ._schema import (
    EvolveConfig,
    ListArgs,
    RunArgs,
    TrainConfig,
    check_offline_flags,
    keys_of,
    with_algo_defaults,
)


def _merge(command: str, given: dict[str, Any], keys: dict) -> dict[str, Any]:
    given = dict(given)
    file_values: dict[str, Any] = {}
    path = given.pop("config", None)
    if path is not None:
        file_values = load_config_file(path)
        stored = file_values.get("command")
        if stored is not None and stored != command:
            raise CliError(
                f"--config {path!r} is a {stored!r} configuration (command = {stored!r}); "
                f"use it with `realax {stored}`, or remove that line"
            )
        file_values = check_config(
            file_values, keys, source=f"--config {path!r}", ignore=("command",)
        )
    flags = check_config(given, keys, source="the command line")
    config = {k: spec.default for k, spec in keys.items()}
    env_mode = _wandb_mode_from_env()
    if env_mode is not None:
        config["wandb"] = env_mode
    config.update(file_values)
    config.update(flags)
    return config


def _wandb_mode_from_env() -> str | None:
    """``WANDB_MODE`` as a ``--wandb`` value (the default when neither file nor flag sets it)."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    return {
        "online": "online",
        "run": "online",
        "offline": "offline",
        "dryrun": "offline",
        "disabled": "off",
        "off": "off",
    }.get(mode)


Config = EvolveConfig | TrainConfig | QDConfig
_CLASSES: dict[str, type[EvolveConfig] | type[TrainConfig] | type[QDConfig]] = {
    "evolve": EvolveConfig,
    "train": TrainConfig,
    "qd": QDConfig,
}


def _typed(command: str, values: dict[str, Any]) -> Config:
    if command == "train":
        return with_algo_defaults(TrainConfig(**values))
    return QDConfig(**values) if command == "qd" else EvolveConfig(**values)


def run_config(run_dir: str | Path) -> Config:
    """The configuration saved in a run folder (``config.toml``)."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise CliError(f"{str(run_dir)!r} is not a run folder (no such directory)")
    cfg = path / CONFIG_FILE
    if not cfg.is_file():
        raise CliError(
            f"{str(run_dir)!r} holds no {CONFIG_FILE}, so it is not a realax run folder; pass the "
            "folder `realax evolve`/`realax train` printed, e.g. runs/CartPole-v1-Open_ES-s0"
        )
    saved = read_toml(cfg)
    command = saved.get("command")
    if command not in _CLASSES:
        raise CliError(f"{cfg} has command = {command!r}; expected 'evolve', 'train' or 'qd'")
    keys = keys_of(_CLASSES[command])
    config = {k: spec.default for k, spec in keys.items()}
    config.update(check_config(saved, keys, source=str(cfg), ignore=("command",)))
    return _typed(command, config)


def _online_needs_login(config: Config) -> Config:
    """``--wandb online`` without wandb credentials: say so once and log offline instead."""
    if config.wandb != "online" or wandb_logged_in():
        return config
    print(
        "realax: --wandb online needs a wandb login (`wandb login`, or WANDB_API_KEY); this run "
        "logs offline into its folder instead (upload it later with `wandb sync`)",
        file=sys.stderr,
        flush=True,
    )
    return config.replace(wandb="offline")


#: what `realax resume` says about a flag it cannot take
_FIXED = (
    "realax resume continues a run with the settings in its config.toml ({flag} fixes what the "
    "checkpoints hold); start a new run like it instead: "
    "`realax {command} --config {run}/config.toml {flag} ... --out OTHER_DIR`"
)


def resume_extras(run: str, extras: list[str]) -> CliError:
    """The error for flags ``realax resume`` does not take (they would change the run)."""
    flag = next((a.split("=", 1)[0] for a in extras if a.startswith("--")), extras[0])
    try:
        command = read_toml(Path(run).expanduser() / CONFIG_FILE).get("command", "evolve")
    except (OSError, ValueError):
        command = "evolve"
    return CliError(_FIXED.format(flag=flag, command=command, run=run.rstrip("/")))


def _sweep_config(command: str, given: dict[str, Any]) -> Any:
    """``realax sweep``, ``realax report`` and ``realax resume`` of a sweep folder (else None)."""
    if command == "resume" and (Path(given["run"]).expanduser() / "sweep.json").is_file():
        import json

        from ._sweep_schema import resume_args

        meta = json.loads((Path(given["run"]).expanduser() / "sweep.json").read_text())

        def typed(cmd: str, values: dict[str, Any]) -> Any:
            keys = keys_of(_CLASSES[cmd])
            checked = check_config(values, keys, source=f"{given['run']}/sweep.json")
            defaults = {k: s.default for k, s in keys.items()}
            return _online_needs_login(_typed(cmd, {**defaults, **checked}))

        return resume_args(given["run"], meta, given, typed)
    if command == "sweep":
        from ._sweep_schema import resolve as resolve_sweep

        def merge(cmd: str, values: dict[str, Any]) -> Any:
            return _online_needs_login(_typed(cmd, _merge(cmd, values, keys_of(_CLASSES[cmd]))))

        return resolve_sweep(given, merge)
    if command == "report":
        from ._sweep_schema import ReportArgs

        return ReportArgs("report", given["run"], given.get("metric"))
    return None


def resolve(command: str, given: dict[str, Any]) -> Any:
    """The full configuration of a command (defaults < --config file < flags)."""
    sweep = _sweep_config(command, given)
    if sweep is not None:
        return sweep
    if command in _CLASSES:
        config = _typed(command, _merge(command, given, keys_of(_CLASSES[command])))
        if config.env is None or (isinstance(config, TrainConfig) and config.algo is None):
            example = "evolve CartPole-v1" if command == "evolve" else "train ppo CartPole-v1"
            what = "an environment" if command == "evolve" else "an algorithm and an environment"
            raise CliError(
                f"{command} needs {what}, e.g. `realax {example}` (`realax envs` lists them)"
            )
        if isinstance(config, TrainConfig):
            check_offline_flags(config)
        return _online_needs_login(config)
    if command == "resume":
        saved = run_config(given["run"])
        if given.get("total") is not None:
            total = POSITIVE(saved.total_key, given["total"])
            saved = saved.replace(**{saved.total_key: total})
            if isinstance(saved, TrainConfig):
                saved = with_algo_defaults(saved)
        if given.get("wandb") is not None:
            saved = saved.replace(wandb=given["wandb"])
        return RunArgs("resume", given["run"], _online_needs_login(saved))
    if command == "eval":
        saved = run_config(given["run"])
        episodes = given["episodes"]
        return RunArgs(
            "eval",
            given["run"],
            saved,
            episodes=saved.eval_episodes if episodes is None else POSITIVE("episodes", episodes),
            seed=NONNEGATIVE("seed", given["seed"]),
            render=bool(given.get("render")),
        )
    if command == "render":
        from ._render import resolve as resolve_render

        return resolve_render(given, run_config(given["run"]))
    if command == "collect":
        from ._collect import resolve as resolve_collect

        return resolve_collect(given, run_config(given["run"]))
    return ListArgs(command, **given)
