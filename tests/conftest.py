"""Fixtures shared by every test package: a fresh project, the shared corpus, a private data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.project import Project
from studio.store import Store


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Recent projects and the default project live in a temporary data dir, never the user's."""
    path = tmp_path_factory.mktemp("studio-data")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(path))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh project folder with its database."""
    return Project.open(tmp_path / "project")


@pytest.fixture
def store(project: Project) -> Iterator[Store]:
    """A connection to a fresh project's database, closed after the test."""
    with project.store() as s:
        yield s


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (or ``$STUDIO_SHARED``); skips when it is absent."""
    root = os.environ.get("STUDIO_SHARED")
    path = Path(root) if root else Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set STUDIO_SHARED to point at it)")
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~470 KB random-weight llama GGUF with a ChatML template (tests/fixtures/tiny_gguf.py)."""
    from tests.fixtures.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path):
    """``python -m llama_cpp.server`` serving ``tiny_gguf`` on 127.0.0.1 for the whole session
    (model name "tiny"; ``.url`` is the OpenAI base URL ending in /v1)."""
    from tests.fixtures.tiny_gguf import LlamaServer

    with LlamaServer(tiny_gguf) as server:
        yield server
