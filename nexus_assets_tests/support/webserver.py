"""A dagster-webserver (or daemon) subprocess: starting it, its GraphQL API, waiting until the code location
loads, stopping its process group.

Shared by test_webserver.py, test_production_backfill.py, test_daemon.py and scripts/ui_screenshots.py
(which runs without pytest: it is imported where a test fails).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nexus_assets_tests.support import PROJECT_ROOT

ASSETS = ("raw_pdfs", "pdf_text", "text_chunks", "chunk_embeddings", "chroma_collection", "vkp_package")
LOCATION, REPOSITORY, JOB = "nexus_assets", "__repository__", "curriculum_build_job"
STARTUP_TIMEOUT_S = 90


def partition_key(subject: str, grade: str) -> str:
    """The partition key, as people say it: `<subject>/<grade>`."""
    return f"{subject}/{grade}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Webserver:
    """A running webserver, its instance and data directory."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    home: Path

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the webserver's (and its code server's and runs') output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def fail(self, message: str) -> NoReturn:
        import pytest

        pytest.fail(f"{message}\n--- webserver output (tail) ---\n{self.log_tail()}", pytrace=False)

    def gql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        """POST a GraphQL query and return its `data`; fail on transport or GraphQL errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.load(response)
        except (urllib.error.URLError, OSError) as exc:
            self.fail(f"GraphQL request failed: {exc}")
        if payload.get("errors"):
            self.fail(f"GraphQL errors: {json.dumps(payload['errors'], indent=1)[:3000]}")
        return payload["data"]


def start_process(command: list[str], env: dict[str, str] | None, log_path: Path) -> subprocess.Popen[bytes]:
    """`command` from the project root in a session of its own (stopped with its children by
    `stop_process_group`), its output to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def webserver_command(port: int) -> list[str]:
    """dagster-webserver on loopback serving this project's workspace."""
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [sys.executable, "-m", "dagster_webserver", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]


def daemon_command() -> list[str]:
    return [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")]


def wait_for_location(url: str, process: subprocess.Popen[bytes], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Poll /server_info, then the workspace, until the code location is LOADED; RuntimeError if the
    webserver exits or `timeout_s` passes, with the last answer."""
    deadline = time.monotonic() + timeout_s
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                pass
            body = json.dumps({"query": query}).encode()
            request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                entries = json.load(response)["data"]["workspaceOrError"].get("locationEntries") or []
            last = repr(entries)
            if any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries):
                return
        except (urllib.error.URLError, OSError, KeyError, TypeError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise RuntimeError(f"code location {LOCATION!r} not loaded within {timeout_s:g}s (last: {last})")


def wait_until_loaded(server: Webserver) -> None:
    """`wait_for_location`, failing the test with the webserver's output."""
    try:
        wait_for_location(server.url, server.process)
    except RuntimeError as exc:
        server.fail(str(exc))


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the webserver's process group (it, its code server and any run worker it started)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children the webserver left behind, if any
    except ProcessLookupError:
        pass
