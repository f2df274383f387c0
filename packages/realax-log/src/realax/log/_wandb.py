"""Starting Weights & Biases runs that never take training down with them."""

from __future__ import annotations

import datetime
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

_MODES = ("online", "offline", "disabled")
_ALIASES = {"dryrun": "offline", "run": "online", "shared": "online"}
DEFAULT_INIT_TIMEOUT = 30.0


def resolve_mode(mode: str | None) -> str:
    """The wandb mode to use: the argument, else ``WANDB_MODE``, else ``"online"``."""
    source = "mode"
    if mode is None:
        mode, source = os.environ.get("WANDB_MODE") or "online", "WANDB_MODE"
    if not isinstance(mode, str):
        raise TypeError(f"{source} must be a string, got {type(mode).__name__}")
    normalised = _ALIASES.get(mode.strip().lower(), mode.strip().lower())
    if normalised not in _MODES:
        raise ValueError(
            f"{source} must be one of {', '.join(map(repr, _MODES))} (got {mode!r}); "
            + ("e.g. mode='offline'" if source == "mode" else "e.g. WANDB_MODE=offline")
        )
    return normalised


def _settings(user: Any, mode: str) -> Any:
    """wandb.Settings with a bounded init timeout and no console capture, merged with user's."""
    import wandb

    defaults: dict[str, Any] = {"console": "off", "silent": True}
    if mode == "online":
        # read WANDB_INIT_TIMEOUT here, every time: wandb reads its environment once per
        # process, so a value set after the first run would otherwise be ignored
        env_timeout = os.environ.get("WANDB_INIT_TIMEOUT")
        try:
            defaults["init_timeout"] = float(env_timeout) if env_timeout else DEFAULT_INIT_TIMEOUT
        except ValueError as err:
            raise ValueError(
                f"WANDB_INIT_TIMEOUT must be a number of seconds (got {env_timeout!r})"
            ) from err
    if user is None:
        return wandb.Settings(**defaults)
    if isinstance(user, Mapping):
        return wandb.Settings(**{**defaults, **user})
    if isinstance(user, wandb.Settings):
        for k, v in defaults.items():
            if k not in user.model_fields_set:
                setattr(user, k, v)
        return user
    raise TypeError(f"settings must be a wandb.Settings or a dict, got {type(user).__name__}")


def start_run(
    *, project: str | None, config: Mapping[str, Any] | None, mode: str | None = None, **kwargs
) -> Any:
    """``wandb.init`` that falls back to offline mode (one warning) when online init fails.

    Returns the run, or ``None`` when the mode is ``"disabled"``.
    """
    mode = resolve_mode(mode)
    if mode == "disabled":
        return None
    import wandb  # imported here: ~1 s, only for runs that log to wandb

    settings = kwargs.pop("settings", None)
    kwargs.setdefault("reinit", "create_new")
    if os.environ.get("WANDB_DIR") and kwargs.get("dir") is None:
        # wandb reads WANDB_DIR once per process; honour its current value for every run.
        kwargs["dir"] = os.environ["WANDB_DIR"]
    try:
        return wandb.init(
            project=project,
            config=dict(config) if config is not None else None,
            mode=mode,  # type: ignore[arg-type]
            settings=_settings(settings, mode),
            **kwargs,
        )
    except Exception as e:
        if mode != "online":
            raise
        warnings.warn(
            f"realax.log: could not start an online wandb run ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else e!r}); continuing with an OFFLINE run. "
            "Upload it later with `wandb sync <run dir>`.",
            RuntimeWarning,
            stacklevel=3,
        )
        if kwargs.get("id") is not None:
            # the failed online attempt has claimed this id in this process: wandb refuses to
            # start a second run with it, so the offline run gets a fresh one
            kwargs["id"] = uuid.uuid4().hex[:8]
        return wandb.init(
            project=project,
            config=dict(config) if config is not None else None,
            mode="offline",
            settings=_settings(settings, "offline"),
            **kwargs,
        )


def finish_run(run: Any, timeout: float = 15.0) -> None:
    """``run.finish()``, then wait (bounded) until wandb's service has written the exit record
    of the run's ``.wandb`` file, so the run can be read back or synced at once."""
    from ._wandb_reader import is_complete

    sync_file = getattr(run.settings, "sync_file", None)
    run.finish()
    if not sync_file:
        return
    deadline = time.monotonic() + timeout
    while not is_complete(sync_file):
        if time.monotonic() > deadline:
            warnings.warn(
                f"realax.log: wandb had not finished writing {sync_file} after {timeout:.0f} s",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        time.sleep(0.05)


def default_wandb_config() -> dict[str, Any]:
    """Default keyword arguments of :func:`setup_wandb`, as a plain dict to edit and splat.

    Example:
        >>> from realax.log import default_wandb_config
        >>> cfg = default_wandb_config()
        >>> cfg["project"], cfg["offline"]
        ('realax', False)
    """
    return {
        "project": "realax",
        "entity": None,
        "group": None,
        "name": None,
        "tags": None,
        "notes": None,
        "offline": False,
        "unique_suffix": True,
    }


def setup_wandb(
    hyperparams: Mapping[str, Any] | None = None,
    project: str = "realax",
    group: str | None = None,
    name: str | None = None,
    offline: bool = False,
    *,
    entity: str | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
    unique_suffix: bool = True,
    **kwargs: Any,
) -> Any:
    """Start a wandb run for an experiment and record its hyperparameters.

    ``name`` and ``group`` may contain ``str.format`` fields filled from ``hyperparams``
    (``name="lr{lr}_seed{seed}"``). With ``unique_suffix`` a UTC timestamp and a short random id
    are appended to the name, so repeated launches never collide. ``offline=True`` (or
    ``WANDB_MODE=offline``) writes the run locally; if an online run cannot reach the server,
    the run continues offline with one warning.

    Args:
        hyperparams: flat or nested dict stored as the run's config.
        project: wandb project.
        group: wandb group (format fields allowed).
        name: run name (format fields allowed); defaults to the project name.
        offline: force offline mode.
        entity: wandb entity (user or team).
        tags: run tags.
        notes: run notes.
        unique_suffix: append ``_<UTC time>_<id>`` to the name.
        **kwargs: further ``wandb.init`` arguments (``dir=...``, ``mode=...``, ``settings=...``).

    Returns:
        The ``wandb`` run (``None`` if ``WANDB_MODE=disabled``).

    Example:
        >>> from realax.log import setup_wandb
        >>> run = setup_wandb({"lr": 3e-4, "seed": 0}, project="demo", name="lr{lr}",
        ...                   offline=True)  # doctest: +SKIP
        >>> run.name  # doctest: +SKIP
        'lr0.0003_20250101-120000_1a2b3c'
    """
    hyperparams = dict(hyperparams or {})
    try:
        name = (name or project).format(**hyperparams)
        group = group.format(**hyperparams) if group is not None else None
    except KeyError as e:
        raise ValueError(
            f"name/group format field {e} is not a key of hyperparams "
            f"(keys: {sorted(hyperparams)}); add it to hyperparams or remove it from the name"
        ) from None
    run_id = uuid.uuid4().hex[:8]
    if unique_suffix:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        name = f"{name}_{stamp}_{run_id[:6]}"
    mode = kwargs.pop("mode", None)
    if offline:
        mode = "offline"
    return start_run(
        project=project,
        config=hyperparams,
        mode=mode,
        entity=entity,
        group=group,
        name=name,
        tags=tags,
        notes=notes,
        id=kwargs.pop("id", run_id),
        **kwargs,
    )
