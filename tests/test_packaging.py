"""Static checks of how the four realax members are packaged.

These run under ``uv run pytest`` in a few seconds and need no network. They read each
member's ``pyproject.toml``, parse its sources with :mod:`ast`, and compare what the code
imports with what the package declares:

* layout: static version, README.md, CHANGELOG.md, py.typed, tests/, no ``realax/__init__.py``;
* every import in ``src/`` maps (via ``importlib.metadata.packages_distributions``) to a
  distribution the member declares: module-level imports reached by ``import realax.<name>``
  need a core dependency; guarded imports (``try/except ImportError``, imports inside
  functions, modules only reached through such imports) need the extra their ImportError
  message names (``pip install "realax-tasks[brax]"``), or at least some extra;
* the dependency direction of docs/architecture.md holds; sibling requirements carry version
  ranges;
* the dependency closure of each member's core requirements in ``uv.lock`` contains none of
  the distributions docs/architecture.md keeps out of it.

The checker functions below are plain functions of a member directory, so the tests at the
bottom run them on synthetic members to show that a violation is really reported.
``tests/test_packaging_build.py`` builds wheels; ``.ci/run`` installs them into fresh venvs.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBER_NAMES = ("realax-agents", "realax-tasks", "realax-train", "realax-log")

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _doc_table(heading: str, first_column: str) -> dict[str, str]:
    """Rows of the markdown table in ``docs/architecture.md`` whose header starts with
    ``| first_column |``, under the section ``## heading``: ``{first cell: second cell}``."""
    text = ARCHITECTURE.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    in_table = False
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith(f"| {first_column} |"):
            in_table = True
        elif in_table and line.startswith("|") and not set(cells[0]) <= {"-", " "}:
            rows[cells[0]] = cells[1]
        elif in_table and not line.startswith("|"):
            break
    if not rows:
        raise AssertionError(
            f"docs/architecture.md: no '| {first_column} |' table under ## {heading}"
        )
    return rows


def _allowed_siblings() -> dict[str, dict[str, tuple[str, ...]]]:
    """The 'may import' table: ``{member: {module: (folders it may be imported from)}}``."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for member, cell in _doc_table("Dependency direction", "package | may import").items():
        allowed: dict[str, tuple[str, ...]] = {}
        if cell != "nothing":
            for part in cell.split(";"):
                module, _, folders = part.partition(" from ")
                allowed[module.strip(" `")] = tuple(
                    f.strip(" `") for f in folders.split(",") if f.strip()
                )
        out[member] = allowed
    return out


def _forbidden_in_core() -> dict[str, set[str]]:
    """The 'kept out of the core install' table: ``{member: {distribution, ...}}``."""
    table = _doc_table("Dependency direction", "package | kept out of the core install")
    return {m: {d.strip() for d in cell.split(",")} for m, cell in table.items()}


# What docs/architecture.md keeps out of each member's core install (dependency closure, not
# just direct), and which realax siblings a member may import, and from where.
FORBIDDEN_IN_CORE = _forbidden_in_core()
ALLOWED_SIBLINGS = _allowed_siblings()
# Edges of third-party packages that we cannot avoid and that do not come from realax:
# flax (which realax-agents and realax-tasks need for flax.struct) itself requires
# orbax-checkpoint, so it is in their environments through flax and through nothing else.
ALLOWED_THIRD_PARTY_EDGES = {("flax", "orbax-checkpoint")}

_REQ_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?\s*"
    r"(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)
_EXTRA_HINT_RE = re.compile(r"realax-(?:agents|tasks|train|log)\[([A-Za-z0-9_,\s-]+)\]")


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class Requirement:
    name: str
    extras: tuple[str, ...]
    spec: str
    raw: str


def parse_requirement(text: str) -> Requirement:
    match = _REQ_RE.match(text)
    if match is None:
        raise ValueError(f"cannot parse requirement {text!r}")
    extras = tuple(e.strip() for e in (match["extras"] or "").split(",") if e.strip())
    return Requirement(normalize(match["name"]), extras, match["spec"].strip(), text)


@dataclasses.dataclass
class Member:
    """What a member's pyproject.toml declares."""

    path: Path
    name: str
    project: dict
    module: str  # "realax.tasks"
    core: list[Requirement]
    extras: dict[str, list[Requirement]]

    @property
    def core_names(self) -> set[str]:
        return {r.name for r in self.core}

    def extra_names(self, extra: str, _seen: frozenset = frozenset()) -> set[str]:
        """Distributions an extra adds, with self-references (``all``) expanded."""
        names: set[str] = set()
        for req in self.extras.get(extra, []):
            if req.name == self.name:
                for sub in req.extras:
                    if sub not in _seen:
                        names |= self.extra_names(sub, _seen | {extra})
            else:
                names.add(req.name)
        return names

    def all_extra_names(self) -> set[str]:
        return set().union(*(self.extra_names(e) for e in self.extras)) if self.extras else set()


def load_member(path: Path) -> Member:
    data = tomllib.loads((path / "pyproject.toml").read_text())
    project = data["project"]
    name = normalize(project["name"])
    module = data.get("tool", {}).get("uv", {}).get("build-backend", {}).get("module-name")
    if module is None:
        module = "realax." + name.removeprefix("realax-")
    core = [parse_requirement(r) for r in project.get("dependencies", [])]
    extras = {
        extra: [parse_requirement(r) for r in reqs]
        for extra, reqs in project.get("optional-dependencies", {}).items()
    }
    return Member(path, name, project, module, core, extras)


# --------------------------------------------------------------------------- imports


@dataclasses.dataclass(frozen=True)
class ImportSite:
    file: Path
    lineno: int
    importer: str  # dotted module doing the import
    target: str  # absolute dotted module imported
    names: tuple[str, ...]  # for "from target import a, b"
    guarded: bool  # inside try/except ImportError, a function body, or dynamic
    extra_hints: tuple[str, ...]  # extras named by the surrounding ImportError message


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    def names(node: ast.expr | None) -> Iterable[str]:
        if node is None:
            yield "BaseException"
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Tuple):
            for elt in node.elts:
                yield from names(elt)

    return bool(
        set(names(handler.type))
        & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    )


def _extra_hints(nodes: Iterable[ast.AST]) -> tuple[str, ...]:
    hints: list[str] = []
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                for match in _EXTRA_HINT_RE.finditer(sub.value):
                    hints.extend(e.strip() for e in match[1].split(",") if e.strip())
    return tuple(dict.fromkeys(hints))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, file: Path, module: str, is_package: bool):
        self.file = file
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.sites: list[ImportSite] = []
        self._guard_depth = 0
        self._hints: list[tuple[str, ...]] = []

    # context -------------------------------------------------------------
    def _visit_guarded(self, nodes: Iterable[ast.AST], hints: tuple[str, ...] = ()) -> None:
        self._guard_depth += 1
        self._hints.append(hints)
        for node in nodes:
            self.visit(node)
        self._hints.pop()
        self._guard_depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        self._visit_guarded(node.body, _extra_hints(node.body))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_guarded([node.body])

    def visit_Try(self, node: ast.Try) -> None:
        handlers = [h for h in node.handlers if _catches_import_error(h)]
        if handlers:
            self._visit_guarded(node.body, _extra_hints(handlers))
        else:
            for child in node.body:
                self.visit(child)
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # never executed at run time
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    # imports -------------------------------------------------------------
    def _add(self, node: ast.AST, target: str, names: tuple[str, ...] = (), dynamic=False):
        hints = tuple(h for hs in self._hints for h in hs)
        self.sites.append(
            ImportSite(
                self.file,
                node.lineno,
                self.module,
                target,
                names,
                guarded=self._guard_depth > 0 or dynamic,
                extra_hints=tuple(dict.fromkeys(hints)),
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        self._add(node, target, tuple(a.name for a in node.names))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        is_import_module = (
            isinstance(func, ast.Attribute)
            and func.attr == "import_module"
            or isinstance(func, ast.Name)
            and func.id in ("import_module", "__import__")
        )
        if (
            is_import_module
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self._add(node, node.args[0].value, dynamic=True)
        self.generic_visit(node)


def module_files(member: Member) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is_package) for every .py file under src/."""
    src = member.path / "src"
    modules = {}
    for file in sorted(src.rglob("*.py")):
        parts = list(file.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = (file, is_package)
    return modules


def collect_imports(member: Member) -> list[ImportSite]:
    sites = []
    for module, (file, is_package) in module_files(member).items():
        tree = ast.parse(file.read_text(), filename=str(file))
        collector = _ImportCollector(file, module, is_package)
        collector.visit(tree)
        sites.extend(collector.sites)
    return sites


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_for(module: str) -> set[str]:
    """Normalised names of the installed distributions that provide ``module``."""
    top, _, rest = module.partition(".")
    if top == "realax":
        sub = rest.split(".")[0]
        return {f"realax-{sub}"} if sub else set()
    candidates = _packages_distributions().get(top, [])
    if len(set(candidates)) > 1 and rest:  # namespace package (google.*): look at files
        prefix = "/".join([top, rest.split(".")[0]])
        precise = {
            d
            for d in candidates
            if any(str(f).startswith(prefix) for f in importlib.metadata.files(d) or [])
        }
        candidates = list(precise) or candidates
    return {normalize(d) for d in candidates}


def _intra_target(site: ImportSite, modules: dict) -> list[str]:
    """Modules of the member itself that an import site loads (parents included)."""
    targets = []
    if site.target in modules:
        targets.append(site.target)
    for name in site.names:
        if f"{site.target}.{name}" in modules:
            targets.append(f"{site.target}.{name}")
    expanded = []
    for t in targets:
        parts = t.split(".")
        expanded.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return [t for t in dict.fromkeys(expanded) if t in modules]


def check_imports(member: Member) -> list[str]:
    """Problems with the member's imports: undeclared distributions, unknown modules."""
    modules = module_files(member)
    sites = collect_imports(member)
    by_importer: dict[str, list[ImportSite]] = {}
    for site in sites:
        by_importer.setdefault(site.importer, []).append(site)

    # Modules loaded by a plain `import realax.<name>` (unconditional edges only).
    core_modules: set[str] = set()
    todo = [member.module] if member.module in modules else []
    while todo:
        mod = todo.pop()
        if mod in core_modules:
            continue
        core_modules.add(mod)
        for site in by_importer.get(mod, []):
            if not site.guarded:
                todo.extend(_intra_target(site, modules))

    # Extras that guard the other modules: propagate hints along unconditional edges from
    # every guarded import of a module of the package.
    module_hints: dict[str, set[str]] = {}
    for site in sites:
        if site.guarded and site.extra_hints:
            todo = _intra_target(site, modules)
            seen: set[str] = set()
            while todo:
                mod = todo.pop()
                if mod in seen or mod in core_modules:
                    continue
                seen.add(mod)
                module_hints.setdefault(mod, set()).update(site.extra_hints)
                for inner in by_importer.get(mod, []):
                    if not inner.guarded:
                        todo.extend(_intra_target(inner, modules))

    problems = []
    core = member.core_names
    declared_extras = set(member.extras)
    for site in sites:
        top = site.target.split(".")[0]
        if not top or top in sys.stdlib_module_names:
            continue
        if site.target == member.module or site.target.startswith(member.module + "."):
            continue
        where = f"{site.file.relative_to(member.path)}:{site.lineno}"
        dists = distributions_for(site.target)
        if not dists:
            problems.append(
                f"{member.name}: {where} imports {site.target!r}, which no installed "
                "distribution provides (declare it, or fix the import)"
            )
            continue
        if site.guarded or site.importer not in core_modules:
            hints = set(site.extra_hints) | module_hints.get(site.importer, set())
            unknown = hints - declared_extras
            if unknown:
                problems.append(
                    f"{member.name}: {where} names extra(s) {sorted(unknown)} in its ImportError "
                    f"message, but pyproject.toml declares only {sorted(declared_extras)}"
                )
            if hints:
                allowed = core.union(*(member.extra_names(h) for h in hints & declared_extras))
                scope = f"the extra(s) {sorted(hints)} its ImportError message names"
            else:
                allowed = core | member.all_extra_names()
                scope = "any dependency or extra"
        else:
            allowed, scope = core, "the core dependencies (it runs on `import " + member.module
            scope += "`)"
        if not dists & allowed:
            problems.append(
                f"{member.name}: {where} imports {site.target!r} (distribution "
                f"{'/'.join(sorted(dists))}), which is not in {scope}; declared: "
                f"{sorted(allowed)}"
            )
    return problems


def check_direction(member: Member) -> list[str]:
    """Imports of realax siblings that the dependency direction of docs/architecture.md forbids."""
    allowed = ALLOWED_SIBLINGS.get(member.name, {})
    problems = []
    for site in collect_imports(member):
        if not (site.target == "realax" or site.target.startswith("realax.")):
            continue
        if site.target == member.module or site.target.startswith(member.module + "."):
            continue
        sibling = ".".join(site.target.split(".")[:2])
        rel = site.file.relative_to(member.path / "src").as_posix()
        where = f"{site.file.relative_to(member.path)}:{site.lineno}"
        if sibling not in allowed:
            problems.append(f"{member.name}: {where} imports {sibling}, which it must never import")
        elif not rel.startswith(allowed[sibling]):
            places = " and ".join(allowed[sibling])
            problems.append(
                f"{member.name}: {where} imports {sibling} outside {places} "
                f"(only those optional subpackages may)"
            )
    return problems


def check_sibling_ranges(member: Member) -> list[str]:
    """Sibling requirements need explicit lower and upper bounds (workspace sources vanish)."""
    problems = []
    groups = [("dependencies", member.core)] + [
        (f"optional-dependencies.{k}", v) for k, v in member.extras.items()
    ]
    for group, reqs in groups:
        for req in reqs:
            if not req.name.startswith("realax-") or req.name == member.name:
                continue
            ops = re.findall(r"(>=|<=|==|~=|>|<)", req.spec)
            has_lower = any(op in (">=", ">", "==", "~=") for op in ops)
            has_upper = any(op in ("<", "<=", "==", "~=") for op in ops)
            if not (has_lower and has_upper):
                problems.append(
                    f"{member.name}: {group} requires {req.raw!r} without an explicit version "
                    f'range; write e.g. "{req.name}>=0.1,<0.2"'
                )
    return problems


@functools.cache
def _lock_graph(lock_path: Path) -> dict[str, dict]:
    lock = tomllib.loads(lock_path.read_text())
    graph: dict[str, dict] = {}
    for pkg in lock["package"]:
        node = graph.setdefault(normalize(pkg["name"]), {"deps": [], "extras": {}})
        node["deps"].extend(pkg.get("dependencies", []))
        for extra, deps in pkg.get("optional-dependencies", {}).items():
            node["extras"].setdefault(extra, []).extend(deps)
    return graph


def lock_closure(
    requirements: Iterable[Requirement], lock_path: Path, skip_edges=frozenset()
) -> dict[str, list[str]]:
    """Dependency closure in uv.lock (all platforms): dist -> one path reaching it."""
    graph = _lock_graph(lock_path)
    paths: dict[str, list[str]] = {}
    todo = [(r.name, tuple(r.extras), [r.name]) for r in requirements]
    seen: set[tuple[str, tuple]] = set()
    while todo:
        name, extras, path = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        paths.setdefault(name, path)
        node = graph.get(name)
        if node is None:
            continue
        deps = list(node["deps"])
        for extra in extras:
            deps.extend(node["extras"].get(extra, []))
        for dep in deps:
            dep_name = normalize(dep["name"])
            if (name, dep_name) in skip_edges:
                continue
            todo.append((dep_name, tuple(dep.get("extra", [])), [*path, dep_name]))
    return paths


def check_forbidden(member: Member, lock_path: Path = ROOT / "uv.lock") -> list[str]:
    """Forbidden distributions reachable from the member's core requirements in uv.lock."""
    forbidden = FORBIDDEN_IN_CORE.get(member.name, set())
    closure = lock_closure(member.core, lock_path, frozenset(ALLOWED_THIRD_PARTY_EDGES))
    problems = []
    for dist in sorted(forbidden & closure.keys()):
        how = "directly" if len(closure[dist]) == 1 else "via " + " -> ".join(closure[dist])
        problems.append(
            f"{member.name}: its core install pulls in {dist} {how}; "
            f"docs/architecture.md keeps {dist} out of {member.name} (move it to an extra)"
        )
    return problems


def check_layout(member: Member) -> list[str]:
    problems = []
    project, path = member.project, member.path
    if "version" not in project or "version" in project.get("dynamic", []):
        problems.append(f"{member.name}: pyproject.toml needs a static [project].version")
    elif not re.fullmatch(r"\d+\.\d+\.\d+", project["version"]):
        problems.append(f"{member.name}: version {project['version']!r} is not X.Y.Z")
    for required in ("README.md", "CHANGELOG.md"):
        if not (path / required).is_file() or not (path / required).read_text().strip():
            problems.append(f"{member.name}: {required} is missing or empty")
    changelog = path / "CHANGELOG.md"
    if changelog.is_file() and project.get("version", "?") not in changelog.read_text():
        problems.append(f"{member.name}: CHANGELOG.md has no entry for {project.get('version')}")
    if project.get("readme") != "README.md":
        problems.append(f"{member.name}: [project].readme should be README.md")
    pkg_dir = path / "src" / Path(*member.module.split("."))
    if not (pkg_dir / "__init__.py").is_file():
        problems.append(f"{member.name}: {pkg_dir.relative_to(path)}/__init__.py is missing")
    if not (pkg_dir / "py.typed").is_file():
        problems.append(f"{member.name}: {pkg_dir.relative_to(path)}/py.typed is missing")
    if (path / "src" / "realax" / "__init__.py").exists():
        problems.append(f"{member.name}: src/realax/__init__.py breaks the PEP 420 namespace")
    tests = path / "tests"
    if not tests.is_dir() or not any(tests.rglob("test_*.py")):
        problems.append(f"{member.name}: tests/ holds no test_*.py file")
    elif any(tests.rglob("__init__.py")):
        problems.append(f"{member.name}: tests/ must not contain __init__.py (importlib mode)")
    if not str(project.get("requires-python", "")).startswith(">=3.11"):
        problems.append(f"{member.name}: requires-python should be >=3.11")
    return problems


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module", params=MEMBER_NAMES)
def member(request) -> Member:
    return load_member(ROOT / "packages" / request.param)


def test_workspace_members_are_the_four_packages():
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["uv"]["workspace"]["members"] == ["packages/*"]
    found = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
    assert found == sorted(MEMBER_NAMES)
    assert not (ROOT / "tests" / "__init__.py").exists()


def test_member_layout(member):
    problems = check_layout(member)
    assert not problems, "\n".join(problems)


def test_every_import_is_declared(member):
    problems = check_imports(member)
    assert not problems, "\n".join(problems)


def test_dependency_direction(member):
    problems = check_direction(member)
    assert not problems, "\n".join(problems)


def test_sibling_requirements_have_version_ranges(member):
    problems = check_sibling_ranges(member)
    assert not problems, "\n".join(problems)


def test_core_closure_has_no_forbidden_distribution(member):
    problems = check_forbidden(member)
    assert not problems, "\n".join(problems)


# ---- the checkers really catch violations (synthetic members in tmp_path) ----


def _synthetic_member(tmp_path: Path, name: str, deps: list[str], extras: dict, files: dict):
    path = tmp_path / name
    short = name.removeprefix("realax-")
    lines = [
        "[project]",
        f'name = "{name}"',
        'version = "0.1.0"',
        'readme = "README.md"',
        'requires-python = ">=3.11"',
        f"dependencies = {deps!r}".replace("'", '"'),
        "[project.optional-dependencies]",
        *(f"{k} = {v!r}".replace("'", '"') for k, v in extras.items()),
        "[tool.uv.build-backend]",
        f'module-name = "realax.{short}"',
    ]
    (path / "src" / "realax" / short).mkdir(parents=True)
    (path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    for rel, text in files.items():
        (path / "src" / "realax" / short / rel).write_text(text)
    return load_member(path)


def test_checker_reports_an_undeclared_import(tmp_path):
    member = _synthetic_member(
        tmp_path,
        "realax-tasks",
        deps=["jax>=0.4", "flax>=0.10"],
        extras={"gymnax": ["gymnax>=1.0", "six"]},
        files={
            "__init__.py": "from ._core import f\nfrom . import _opt\n",
            "_core.py": "import jax\nimport wandb\n\ndef f():\n    return jax\n",
            "_opt.py": (
                "def make():\n"
                "    try:\n"
                "        import gymnax\n"
                "    except ImportError as e:\n"
                "        raise ImportError('pip install \"realax-tasks[gymnax]\"') from e\n"
                "    return gymnax\n"
            ),
        },
    )
    problems = check_imports(member)
    assert len(problems) == 1, problems
    assert "_core.py:2 imports 'wandb'" in problems[0]
    assert "core dependencies" in problems[0]


def test_checker_reports_an_import_outside_the_extra_it_names(tmp_path):
    member = _synthetic_member(
        tmp_path,
        "realax-log",
        deps=["jax>=0.4"],
        extras={"plot": ["matplotlib>=3.8"], "other": ["optax"]},
        files={
            "__init__.py": (
                "import jax\n\n"
                "def __getattr__(name):\n"
                "    try:\n"
                "        from ._plots import plot\n"
                "    except ImportError as e:\n"
                "        raise ImportError('pip install \"realax-log[plot]\"') from e\n"
                "    return plot\n"
            ),
            # module-level imports of a module only reached through the guarded import:
            # they count against the `plot` extra, where optax is not declared.
            "_plots.py": "import matplotlib.pyplot as plt\nimport optax\n\nplot = plt.plot\n",
        },
    )
    problems = check_imports(member)
    assert len(problems) == 1, problems
    assert "_plots.py:2 imports 'optax'" in problems[0] and "['plot']" in problems[0]


def test_checker_reports_a_module_level_import_of_an_extra(tmp_path):
    # gymnax is declared, but only as an extra: importing it on `import realax.tasks` breaks
    # the core install.
    member = _synthetic_member(
        tmp_path,
        "realax-tasks",
        deps=["jax>=0.4"],
        extras={"gymnax": ["gymnax>=1.0"]},
        files={"__init__.py": "from ._g import make\n", "_g.py": "import gymnax\nmake = 1\n"},
    )
    problems = check_imports(member)
    assert len(problems) == 1 and "'gymnax'" in problems[0], problems


def test_checker_reports_forbidden_direction_and_unbounded_sibling(tmp_path):
    member = _synthetic_member(
        tmp_path,
        "realax-train",
        deps=["jax>=0.4"],
        extras={"rl": ["realax-agents", "realax-tasks>=0.1,<0.2"], "log": ["realax-log>=0.1"]},
        files={
            "__init__.py": "from realax.log import Logger\nfrom realax.tasks import make\n",
        },
    )
    direction = check_direction(member)
    assert len(direction) == 2, direction
    assert "imports realax.log outside realax/train/cli/" in direction[0]
    assert "imports realax.tasks outside realax/train/rl/ and realax/train/cli/" in direction[1]
    ranges = check_sibling_ranges(member)
    assert len(ranges) == 2, ranges
    assert "'realax-agents'" in ranges[0] and "'realax-log>=0.1'" in ranges[1]


def test_checker_reports_a_forbidden_dependency(tmp_path):
    # realax-tasks declaring wandb (directly) or realax-train (which pulls evosax) breaks
    # docs/architecture.md's rule; flax's own orbax-checkpoint requirement is the one tolerated
    # edge.
    member = _synthetic_member(
        tmp_path,
        "realax-tasks",
        deps=["jax>=0.4", "flax>=0.10", "wandb>=0.17", "realax-train>=0.1,<0.2"],
        extras={},
        files={"__init__.py": "import jax\n"},
    )
    problems = check_forbidden(member)
    assert [p.split(";")[0] for p in problems] == [
        "realax-tasks: its core install pulls in evosax via realax-train -> evosax",
        "realax-tasks: its core install pulls in wandb directly",
    ], problems


def test_architecture_tables_name_every_member():
    # docs/architecture.md is the source of the dependency direction the checks above enforce
    assert set(ALLOWED_SIBLINGS) == set(MEMBER_NAMES)
    assert set(FORBIDDEN_IN_CORE) == set(MEMBER_NAMES)
    assert ALLOWED_SIBLINGS["realax-train"]["realax.log"] == ("realax/train/cli/",)
    assert ALLOWED_SIBLINGS["realax-agents"] == {}
    assert "wandb" in FORBIDDEN_IN_CORE["realax-tasks"]


# Each package's section of docs/architecture.md and the source folder its module table covers.
_MODULE_SECTIONS = {
    "realax-agents (": ("realax-agents", "agents", ()),
    "realax-tasks (": ("realax-tasks", "tasks", ()),
    "realax-train (": ("realax-train", "train", ("cli/",)),
    "realax-log (": ("realax-log", "log", ()),
    "The command line (": ("realax-train", "train/cli", ()),
}


def _documented_modules(section_start: str) -> set[str]:
    text = ARCHITECTURE.read_text()
    section = text.split(f"\n## {section_start}", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([\w/]+\.py)`", first_cell))
    return names


@pytest.mark.parametrize("section", list(_MODULE_SECTIONS))
def test_architecture_module_tables_are_true(section):
    member, folder, excluded = _MODULE_SECTIONS[section]
    src = ROOT / "packages" / member / "src" / "realax" / folder
    actual = {
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
        and not p.relative_to(src).as_posix().startswith(excluded)
    }
    documented = _documented_modules(section) - {"__init__.py", "__main__.py"}
    assert not actual - documented, (
        f"docs/architecture.md, section '{section}...': add a row for {sorted(actual - documented)}"
    )
    missing = sorted(documented - actual)
    assert not missing, f"docs/architecture.md, section '{section}...': no such module {missing}"


def _module_level_imports(src: Path, rel: Path, package: str) -> set[str]:
    """Modules of ``package`` that ``src / rel`` imports, at module level or inside functions
    (a lazy import is still an edge of the design); imports under ``if TYPE_CHECKING:`` are
    for the type checker only and do not count."""
    tree = ast.parse((src / rel).read_text())
    here = ".".join(rel.with_suffix("").parts)
    here_pkg = (
        here.removesuffix(".__init__") if rel.name == "__init__.py" else here.rsplit(".", 1)[0]
    )
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if not isinstance(node, ast.Import | ast.ImportFrom):
                visit([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)])
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here_pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else here_pkg
                    target = f"{base}.{node.module}" if node.module else base
                    if node.module:  # `from . import x` imports x, not the package again
                        found.add(target)
                    found.update(f"{target}.{a.name}" for a in node.names)
                elif node.module and node.module.startswith(package):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith(package))

    visit(tree.body)
    return found


@pytest.mark.parametrize("member", MEMBER_NAMES)
def test_no_import_cycle_inside_a_package(member):
    # docs/architecture.md: no module of a package imports a module that imports it back
    # (directly or through others), not even lazily inside a function
    package = "realax." + member.removeprefix("realax-")
    src = ROOT / "packages" / member / "src"
    modules = {}
    for path in sorted((src / "realax").rglob("*.py")):
        rel = path.relative_to(src)
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {
        name: {
            m for m in _module_level_imports(src, path.relative_to(src), package) if m in modules
        }
        for name, path in modules.items()
    }
    # the package __init__ re-exporting its modules is not a cycle: modules never need it
    for name in graph:
        graph[name].discard(package)

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, f"import cycle in {member}: {' -> '.join(cycles[0])}"
