"""Shared fixtures: generated sample data, the shared corpus, a test Dagster instance."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_assets_tests.support import PROJECT_ROOT, make_aws_env, unavailable  # noqa: F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = PROJECT_ROOT.parent / "shared"
SHARED_CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def sample_raw_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample corpus, written once per session (read-only for tests)."""
    from nexus_assets.lib.ingest.sample_data import generate_sample_corpus

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
    from nexus_assets.lib.index.embedding import default_embedder

    return default_embedder()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3/DynamoDB/CloudFront endpoint on loopback (moto's server), reached over HTTP by boto3."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = make_aws_env(moto_endpoint)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def fake_bedrock() -> Iterator:
    """A Titan V2 InvokeModel endpoint on loopback (nexus_assets_tests/fake_bedrock.py), one per test."""
    from nexus_assets_tests.support.fake_bedrock import FakeBedrock

    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def bedrock_env(fake_bedrock, monkeypatch: pytest.MonkeyPatch):
    """Credentials boto3 can sign with and the Bedrock endpoint at the fake: NEXUS_BEDROCK_ENDPOINT_URL for
    the settings, and boto3's own AWS_ENDPOINT_URL_BEDROCK_RUNTIME for embedders made without one."""
    monkeypatch.setenv("NEXUS_BEDROCK_ENDPOINT_URL", fake_bedrock.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake_bedrock.endpoint_url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    return fake_bedrock


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator:
    """`<tmp_path>/publisher/vkp` served over HTTP on loopback: (base URL, handler class), see support/http_files.py."""
    from nexus_assets_tests.support.http_files import serve_files

    with serve_files(tmp_path / "publisher" / "vkp") as served:
        yield served


# --- Reliability suite (issue 10) ------------------------------------------------------------------
# Tests marked `@pytest.mark.reliability(kind, case)` try one bad input, fault, crash or attack on
# purpose and record what they observed with the `reliability` fixture. With NEXUS_RELIABILITY_OUT
# set, the session writes those observations (and each test's verdict) to that JSON file, from which
# `scripts/reliability_table.py` renders the Reliability table of docs/reliability.md: the table is what the tests
# saw, never prose written beside them.
_RELIABILITY: dict[str, dict[str, str]] = {}


@pytest.fixture
def reliability(request: pytest.FixtureRequest):
    """`reliability("what happened")` records this case's observed outcome for the Reliability table."""
    marker = request.node.get_closest_marker("reliability")
    if marker is None or len(marker.args) != 2:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the reliability fixture needs @pytest.mark.reliability(kind, case)"
        )
    kind, case = marker.args
    entry = _RELIABILITY.setdefault(request.node.nodeid, {"kind": kind, "case": case, "outcome": "", "result": ""})

    def record(outcome: str) -> None:
        if outcome in entry["outcome"].split("; "):  # a property test records once per example: keep one
            return
        entry["outcome"] = f"{entry['outcome']}; {outcome}" if entry["outcome"] else outcome

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    entry = _RELIABILITY.get(item.nodeid)
    if entry is not None and (report.when == "call" or report.failed):
        entry["result"] = "failed" if report.failed else ("skipped" if report.skipped else "passed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get("NEXUS_RELIABILITY_OUT")
    if out and _RELIABILITY:
        import json

        # Merged into what earlier sessions wrote, so `make check test` (two pytest runs) fills one file.
        earlier = json.loads(Path(out).read_text()) if Path(out).is_file() else []
        merged = {row["test"]: row for row in earlier}
        merged.update({nodeid: {"test": nodeid, **entry} for nodeid, entry in _RELIABILITY.items()})
        Path(out).write_text(json.dumps([merged[k] for k in sorted(merged)], indent=1, ensure_ascii=False) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    """With NEXUS_RELIABILITY_CASES_OUT set, write the (kind, case) of every collected reliability test."""
    out = os.environ.get("NEXUS_RELIABILITY_CASES_OUT")
    if not out:
        return
    import json

    cases = []
    for item in session.items:
        marker = item.get_closest_marker("reliability")
        if marker is not None:
            cases.append({"test": item.nodeid, "kind": marker.args[0], "case": marker.args[1]})
    Path(out).write_text(json.dumps(cases, indent=1, ensure_ascii=False))
