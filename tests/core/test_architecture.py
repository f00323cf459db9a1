"""The core never imports Qt: import-linter's contract in pyproject.toml, checked here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_import_contract_holds() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_only_the_ui_package_names_qt_at_all() -> None:
    """A plain text check that also catches imports hidden inside functions."""
    offenders = []
    for path in (REPO / "studio").rglob("*.py"):
        rel = path.relative_to(REPO / "studio").parts
        if rel[0] == "ui":
            continue
        text = path.read_text("utf-8")
        names_qt = "PySide6" in text or "pyqtgraph" in text or "studio.ui" in text
        if names_qt and rel != ("main.py",):  # the entry point joins CLI and GUI, by design
            offenders.append(str(path))
    assert not offenders
