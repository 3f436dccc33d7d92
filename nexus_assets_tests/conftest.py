"""Shared fixtures: generated sample data, the shared corpus, a test Dagster instance."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
SHARED_CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def sample_raw_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample corpus, written once per session (read-only for tests)."""
    from nexus_assets.lib.sample_data import generate_sample_corpus

    root = tmp_path_factory.mktemp("sample") / "raw-curriculum"
    generate_sample_corpus(root)
    return root


@pytest.fixture
def data_dir(tmp_path: Path, sample_raw_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh NEXUS_DATA_DIR holding a copy of the sample PDFs."""
    root = tmp_path / "data"
    shutil.copytree(sample_raw_root, root / "raw-curriculum")
    monkeypatch.setenv("NEXUS_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    if not (SHARED_CORPUS / "MANIFEST.md").is_file():
        pytest.skip(f"../shared/corpus is absent ({SHARED_CORPUS}): the shared PDF corpus tests need it")
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def embedder():
    """The bundled MiniLM, loaded once per test session."""
    from nexus_assets.lib.embedding import default_embedder

    return default_embedder()
