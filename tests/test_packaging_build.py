"""Builds the four members with ``uv build`` (about a second) and inspects the artefacts.

What a user installs from PyPI is the wheel, so its metadata and file list are what count:
``realax-tasks`` must require only jax and flax (the suites are extras), siblings must be
required with version ranges (uv's ``workspace = true`` sources do not survive a build), and
every wheel must ship ``realax/<name>/`` with ``py.typed`` but no ``realax/__init__.py``.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = ("realax-agents", "realax-tasks", "realax-train", "realax-log")


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH; run the tests with `uv run pytest`")
    return uv


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_key(text: str) -> tuple[str, str, str, str]:
    """(name, extras, specifier, extra-marker) of a requirement string, whitespace-free."""
    match = re.match(
        r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(?:;(.*))?$", text
    )
    assert match, text
    name, extras, spec, marker = match.groups()
    extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker or "")
    extras_norm = ",".join(sorted(e.strip() for e in (extras or "[]")[1:-1].split(",") if e))
    spec_norm = ",".join(sorted(s.strip() for s in spec.split(",") if s.strip()))
    return _normalize(name), extras_norm, spec_norm, extra[1] if extra else ""


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(zf.read(name))


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [_uv(), "build", "--all-packages", "--out-dir", str(out), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_all_packages_build_one_wheel_and_one_sdist_each(dist):
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    sdists = sorted(p.name for p in dist.glob("*.tar.gz"))
    expected = sorted(m.replace("-", "_") for m in MEMBERS)
    assert [w.split("-")[0] for w in wheels] == expected, wheels
    assert [s.split("-")[0] for s in sdists] == expected, sdists


@pytest.mark.parametrize("member", MEMBERS)
def test_wheel_contents_and_metadata_match_the_source(dist, member):
    project = tomllib.loads((ROOT / "packages" / member / "pyproject.toml").read_text())["project"]
    short = member.removeprefix("realax-")
    (wheel,) = dist.glob(f"realax_{short}-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        files = set(zf.namelist())
    src = ROOT / "packages" / member / "src"
    sources = {p.relative_to(src).as_posix() for p in src.rglob("*.py")}
    sources |= {p.relative_to(src).as_posix() for p in src.rglob("py.typed")}
    assert "realax/__init__.py" not in files, "realax is a PEP 420 namespace"
    assert f"realax/{short}/py.typed" in files
    assert sources <= files, sorted(sources - files)
    shipped = {f for f in files if not f.endswith("/") and ".dist-info/" not in f}
    assert shipped == sources, sorted(shipped ^ sources)

    meta = _metadata(wheel)
    assert meta["Name"] == member and meta["Version"] == project["version"]
    declared = {_requirement_key(r) for r in project.get("dependencies", [])}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        for req in reqs:
            name, extras, spec, _ = _requirement_key(req)
            declared.add((name, extras, spec, extra))
    assert {_requirement_key(r) for r in meta.get_all("Requires-Dist") or []} == declared
    extras = set(project.get("optional-dependencies", {}))
    assert set(meta.get_all("Provides-Extra") or []) == extras

    (sdist,) = dist.glob(f"realax_{short}-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md"} <= names
    assert {f"src/{s}" for s in sources} <= names


def test_realax_tasks_wheel_requires_only_jax_flax_and_its_extras(tmp_path):
    proc = subprocess.run(
        [_uv(), "build", "--package", "realax-tasks", "--wheel", "-o", str(tmp_path), "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("realax_tasks-*.whl")
    requires = [_requirement_key(r) for r in _metadata(wheel).get_all("Requires-Dist")]
    core = {name for name, _, _, extra in requires if not extra}
    assert core == {"jax", "flax"}
    by_extra: dict[str, set[str]] = {}
    for name, extras, _, extra in requires:
        if extra:
            by_extra.setdefault(extra, set()).add(f"{name}[{extras}]" if extras else name)
    assert by_extra == {
        "gymnax": {"gymnax", "six"},  # gymnax 1.0.1 imports six without declaring it
        "brax": {"brax"},
        "jumanji": {"jumanji"},
        "playground": {"playground"},
        "craftax": {"craftax"},
        "xminigrid": {"xminigrid"},
        "navix": {"navix"},
        "all": {"realax-tasks[brax,craftax,gymnax,jumanji,navix,playground,render,xminigrid]"},
        # Task.render: pillow writes GIFs, imageio-ffmpeg's ffmpeg MP4s; gymnax's
        # classic-control visualizer needs pygame
        "render": {"pillow", "matplotlib", "numpy", "imageio-ffmpeg"},
        "gymnax-render": {"realax-tasks[gymnax,render]", "gymnax[visualize]"},
    }
