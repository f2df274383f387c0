"""The table of environment suites: one :class:`SuiteAdapter` per suite.

Each suite module (``_gymnax``, ``_brax``, ``_jumanji``) builds its adapter and calls
:func:`register_suite` when imported; this module imports none of them, so there is no cycle.
The registry (``_registry``) and the catalog (``_catalog``) only go through the table.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import _cache
from ._quiet import quiet

if TYPE_CHECKING:
    from ._env import Env, EnvSpec


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    """What a listing knows about one registered environment, read without running it.

    Attributes:
        name: the name in its suite's registry.
        suite: ``"gymnax"``, ``"brax"`` or ``"jumanji"``.
        obs_shape: shape of one (flattened, for jumanji) observation, ``None`` if unknown.
        action_dims: as :attr:`EnvSpec.action_dims`, ``None`` if unknown.
        discrete: whether actions are (multi-)discrete, ``None`` if unknown.
        reason: ``None`` when the environment can be built here; otherwise whole sentences
            saying why not (e.g. it needs a download) and what to do.
    """

    name: str
    suite: str
    obs_shape: tuple[int, ...] | None = None
    action_dims: int | tuple[int, ...] | None = None
    discrete: bool | None = None
    reason: str | None = None

    @classmethod
    def from_spec(cls, spec: EnvSpec) -> EnvInfo:
        """The info of a built environment's :class:`EnvSpec`."""
        return cls(spec.name, spec.suite, spec.obs_shape, spec.action_dims, spec.discrete)

    @property
    def available(self) -> bool:
        """Whether the environment can be built here (``reason is None``)."""
        return self.reason is None

    @property
    def obs_dims(self) -> int | None:
        """Size of the flattened observation (``None`` if unknown)."""
        if self.obs_shape is None:
            return None
        size = 1
        for d in self.obs_shape:
            size *= d
        return size


@dataclasses.dataclass(frozen=True)
class SuiteAdapter:
    """How realax.tasks uses one environment suite.

    Attributes:
        name: the suite's name, also the ``"<name>/"`` prefix of its environment names.
        names: ``module -> names``, read from the suite's own registry at call time.
        make: ``(name, **kwargs) -> Env`` for a registered name.
        wrap: ``(instance, **kwargs) -> Env`` for an instance of the suite's environment
            class (default: ``make``, for wrappers that take either).
        describe: ``(name) -> EnvInfo`` read cheaply (without building), or ``None`` to build
            the environment once and read its spec (then cached on disk).
        download: ``(name) -> reason or None``: why building ``name`` would need the
            network, decided without touching it.
        open_registry: ``names`` may miss environments registered at runtime, so a name with
            an explicit ``"<name>/"`` prefix is passed to ``make`` even when not listed.
        static_names: ``names`` does not need the suite's module (it is called with
            ``None`` while the suite is not imported), so listing does not import it.
        extra: the pip extra of realax-tasks that installs it (default: ``name``).
        module: the module to import to use it (default: ``name``; ``"brax.envs"``).
        distribution: the distribution whose version keys the on-disk cache (default:
            ``name``).
        render: ``(env, states) -> frames``: RGB ``uint8`` arrays drawn on the host from a
            list of the suite's own states, one per frame (``None``: no renderer).
        check_render: ``(env) -> None``: raises, naming the package to install or the
            setting to change, when ``render`` could not run here; called before training.
        slow_describe: reading an environment's dimensions means building it and takes
            seconds or more each (Playground traces its MJX model): a listing over every suite
            (``realax envs``) shows only the dimensions already known (`known_env_info`).
    """

    name: str
    names: Callable[[Any], list[str]]
    make: Callable[..., Env]
    wrap: Callable[..., Env] | None = None
    describe: Callable[[str], EnvInfo] | None = None
    download: Callable[[str], str | None] = lambda name: None
    open_registry: bool = False
    static_names: bool = False
    extra: str = ""
    module: str = ""
    distribution: str = ""
    render: Callable[[Env, list[Any]], list[Any]] | None = None
    check_render: Callable[[Env], None] | None = None
    slow_describe: bool = False

    def __post_init__(self) -> None:
        for field in ("extra", "module", "distribution"):  # default: the suite's name
            if not getattr(self, field):
                object.__setattr__(self, field, self.name)

    def load(self) -> ModuleType:
        """Imports the suite (quietly), or raises an ``ImportError`` naming the extra."""
        try:
            with quiet():
                return importlib.import_module(self.module)
        except ImportError as error:
            raise ImportError(
                f"{self.name} environments need the optional dependency {self.name!r}, "
                f"which is not installed ({error}). Install it with: "
                f'pip install "realax-tasks[{self.extra}]"'
            ) from error

    def registered(self) -> list[str]:
        """The suite's registered names (raises ``ImportError`` if it is not installed).

        Read live once the suite is imported (so runtime registrations count); before that,
        from the on-disk cache of this suite version when present, which saves the import.
        """
        module = sys.modules.get(self.module)
        if module is None and self.static_names and self.installed():
            return list(self.names(None))
        if module is None:
            path = self.cache_path()
            cached = _cache.read(path).get("names") if path and self.installed() else None
            if isinstance(cached, list):
                return [str(n) for n in cached]
            module = self.load()
            names = list(self.names(module))
            if path:
                _cache.update(path, names=names)
            return names
        return list(self.names(module))

    def installed(self) -> bool:
        """Whether the suite's top-level package can be found (without importing it)."""
        try:
            return importlib.util.find_spec(self.module.split(".")[0]) is not None
        except (ImportError, ValueError):
            return False

    def cache_path(self) -> Path | None:
        """The on-disk cache file of the installed suite version (``None``: no version)."""
        try:
            return _cache.cache_path(self.name, importlib.metadata.version(self.distribution))
        except importlib.metadata.PackageNotFoundError:
            return None


_TABLE: dict[str, SuiteAdapter] = {}


class UnknownEnvName(ValueError):
    """An environment name no installed suite registers (the message lists close matches)."""


def register_suite(adapter: SuiteAdapter) -> None:
    """Adds (or replaces) a suite in the table; suites are looked up in registration order."""
    _TABLE[adapter.name] = adapter


def suites() -> tuple[str, ...]:
    """The names of the suites realax.tasks knows (installed or not), in lookup order.

    >>> import realax.tasks  # registers the suites
    >>> {"gymnax", "brax", "jumanji", "craftax", "xminigrid", "navix"} <= set(suites())
    True
    """
    return tuple(_TABLE)


def suite_extra(suite: str) -> str:
    """The pip extra of realax-tasks that installs ``suite``.

    >>> import realax.tasks  # registers the suites
    >>> suite_extra("navix")
    'navix'
    """
    return adapter(suite).extra


def slow_to_describe(suite: str) -> bool:
    """Whether reading an environment's dimensions builds it and takes seconds or more
    (Playground); listings then show only the known ones (`known_env_info`).

    >>> import realax.tasks  # registers the suites
    >>> slow_to_describe("gymnax"), slow_to_describe("playground")
    (False, True)
    """
    return adapter(suite).slow_describe


def adapter(suite: str) -> SuiteAdapter:
    """The adapter of ``suite``; ``ValueError`` naming the choices otherwise."""
    if suite not in _TABLE:
        raise ValueError(f"suite must be one of {suites()} (got suite={suite!r})")
    return _TABLE[suite]


def adapter_of_instance(env: Any) -> SuiteAdapter | None:
    """The adapter whose suite defines a class in ``type(env)``'s MRO, if any."""
    for cls in type(env).__mro__:
        root = cls.__module__.split(".")[0]
        if root in _TABLE:
            return _TABLE[root]
        for a in _TABLE.values():  # a suite named apart from its package (mujoco_playground)
            if a.module.split(".")[0] == root:
                return a
    return None


def import_suite(suite: str) -> ModuleType:
    """Imports an environment suite, or explains which extra installs it.

    The suites' import-time noise (mujoco-mjx's "Failed to import warp") is not printed.

    Args:
        suite: one of ``"gymnax"``, ``"brax"``, ``"jumanji"``.

    Returns:
        The imported top-level module (for brax: ``brax.envs``).

    Raises:
        ImportError: if the suite is not installed; the message names the extra.

    >>> gymnax = import_suite("gymnax")
    """
    return adapter(suite).load()


def unknown_name(name: str, suite: str | None, pool: list[str], missing: list[str]) -> Exception:
    """The error for a name no installed suite registers: close matches from ``pool``, where
    to list names, and the extras of the ``missing`` (not installed) suites."""
    bare = name.partition("/")[2] if suite else name
    close = difflib.get_close_matches(bare, pool, n=5, cutoff=0.5)
    if not close:
        lower = {n.lower(): n for n in pool}
        close = [lower[n] for n in difflib.get_close_matches(bare.lower(), list(lower), n=5)]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    where = f"{suite} " if suite else f"{', '.join(suites()[:-1])} or {suites()[-1]} "
    listing = (
        "Run `realax envs` (or call realax.tasks.registered_names()) to list every available name."
    )
    message = f"unknown environment name {name!r}: not a registered {where}environment.{hint}"
    if missing:
        installs = "; ".join(f'pip install "realax-tasks[{_TABLE[s].extra}]"' for s in missing)
        return ImportError(
            f"{message} It may belong to a suite that is not installed "
            f"({', '.join(missing)}): {installs}. {listing}"
        )
    return UnknownEnvName(f"{message} {listing}")


def resolve(name: str) -> tuple[SuiteAdapter, str]:
    """``(adapter, bare name)`` for an environment name, importing only the suites needed.

    A ``"<suite>/"`` prefix picks the suite; otherwise suites are tried in table order.
    """
    if not isinstance(name, str):
        raise TypeError(f"env name must be a str (got {type(name).__name__}: {name!r})")
    prefix, sep, rest = name.partition("/")
    suite = prefix if sep and prefix in _TABLE else None
    bare = rest if suite else name
    pool: list[str] = []
    missing: list[str] = []
    for s in (suite,) if suite else suites():
        a = _TABLE[s]
        if suite:
            names = a.registered()  # a missing suite raises its own ImportError here
        else:
            try:
                names = a.registered()
            except ImportError:
                missing.append(s)
                continue
        if bare in names or (suite and a.open_registry):
            return a, bare
        pool.extend(names)
    raise unknown_name(name, suite, sorted(set(pool)), missing)


def check_name(suite: str, name: str) -> None:
    """Raises the registry's unknown-name ``ValueError`` if ``suite`` does not list ``name``."""
    a = adapter(suite)
    names = a.registered()
    if name not in names and not a.open_registry:
        raise unknown_name(f"{suite}/{name}", suite, sorted(names), [])
