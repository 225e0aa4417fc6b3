"""Imports point one way (ARCHITECTURE.md): walk each module's imports, fail on a wrong arrow."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = (
    "config",
    "core",
    "indicadores",
    "estrategias",
    "backtesting",
    "data",
    "websocket",
    "wsbridge",
    "app",
)
# package -> packages of ours it may import (besides itself)
ALLOWED = {
    "config": set(),
    "core": {"config"},
    "indicadores": set(),
    "estrategias": {"indicadores", "core", "config"},
    "backtesting": {"estrategias", "indicadores", "core", "config"},
    "data": {"core", "config"},
    "websocket": {"core", "config"},
    "wsbridge": {"websocket", "core", "estrategias", "indicadores", "config"},
    "app": {"core", "config", "indicadores", "estrategias", "backtesting", "data"},
}
# third-party packages confined to one place
CONFINED = {
    "sqlalchemy": "core/repository",
    "alembic": "core/repository",
    "binance": "core/exchange",
    "aiohttp": "core/exchange/demo",
    "flask": "app",
    "optuna": "backtesting",
    "distributed": "backtesting",
    "dask": "backtesting",
}
# core's pure modules (ARCHITECTURE.md "Trading and optimisation"); the ones not written yet are
# skipped. Neither they nor anything of ours they import may reach an I/O library.
# ARCHITECTURE.md also names core/reconcile.py as pure; it joins this list when it is written.
PURE_CORE = ("models", "state", "rules", "costs", "risk", "signals", "intervals")
IO_LIBRARIES = {
    "sqlalchemy", "alembic", "psycopg", "psycopg2", "sqlite3", "requests", "httpx", "urllib3",
    "aiohttp", "websockets", "socket", "flask", "binance",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _source(module: str, root: Path = ROOT) -> Path | None:
    """The file of one of our modules (`core.models`, `core.exchange`), None for anything else."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if module.split(".")[0] in OURS and path.is_file():
            return path
    return None


def _reachable(path: Path, root: Path = ROOT) -> dict[str, str]:
    """Every module `path` imports, directly or through our modules: name -> first importer."""
    found: dict[str, str] = {}
    todo = [path]
    while todo:
        current = todo.pop()
        for node in ast.walk(ast.parse(current.read_text(), filename=str(current))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from core import models` imports core.models; `from core.models import Candle`
                # names no module, and is skipped below.
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for name in names:
                source = _source(name, root)
                if name in found or (name.split(".")[0] in OURS and source is None):
                    continue
                found[name] = current.relative_to(root).as_posix()
                if source is not None:
                    todo.append(source)
    return found


def test_every_package_exists_and_has_modules():
    for package in OURS:
        assert (ROOT / package / "__init__.py").is_file(), package


@pytest.mark.parametrize("package", OURS)
def test_imports_point_one_way(package):
    wrong = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in OURS and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_confined_libraries_stay_in_their_package():
    wrong = []
    for package in OURS:
        for path in _modules(package):
            relative = path.relative_to(ROOT).as_posix()
            for name in _imports(path):
                home = CONFINED.get(name.split(".")[0])
                if home and not relative.startswith(home + "/"):
                    wrong.append(f"{relative} imports {name} (only {home} may)")
    assert not wrong, "\n".join(wrong)


def test_detector_catches_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from app import create_app\nimport sqlalchemy.orm\n")
    assert _imports(bad) == {"app", "sqlalchemy.orm"}


@pytest.mark.parametrize("module", PURE_CORE)
def test_pure_core_modules_reach_no_io_library_and_no_strategy(module):
    path = ROOT / "core" / f"{module}.py"
    assert path.is_file(), f"core/{module}.py is listed as pure but does not exist"
    wrong = [
        f"{importer} imports {name}"
        for name, importer in _reachable(path).items()
        if name.split(".")[0] in IO_LIBRARIES | {"estrategias"}
    ]
    assert not wrong, "\n".join(wrong)


def test_reachability_follows_our_modules_to_a_library(tmp_path):
    for package in ("core", "estrategias"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "estrategias" / "base.py").write_text("")
    (tmp_path / "core" / "pure.py").write_text("from core import helper\n")
    (tmp_path / "core" / "helper.py").write_text("import requests\nimport estrategias.base\n")
    found = _reachable(tmp_path / "core" / "pure.py", tmp_path)
    assert found == {
        "core": "core/pure.py",
        "core.helper": "core/pure.py",
        "requests": "core/helper.py",
        "estrategias.base": "core/helper.py",
    }
