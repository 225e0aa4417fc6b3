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
}


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
