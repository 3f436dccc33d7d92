"""A dagster-webserver subprocess: its GraphQL API, waiting until the code location loads, stopping it.

Shared by test_webserver.py, test_production_backfill.py and test_daemon.py (`stop_process_group`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from nexus_assets_tests.support import PROJECT_ROOT  # noqa: F401 -- re-exported for the webserver tests

ASSETS = ("raw_pdfs", "pdf_text", "text_chunks", "chunk_embeddings", "chroma_collection", "vkp_package")
LOCATION, REPOSITORY, JOB = "nexus_assets", "__repository__", "curriculum_build_job"
STARTUP_TIMEOUT_S = 90


def partition_key(subject: str, grade: str) -> str:
    """The MultiPartitionKey string: dimensions sorted by name, so "<grade>|<subject>"."""
    return f"{grade}|{subject}"


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


def wait_until_loaded(server: Webserver) -> None:
    """Poll /server_info, then the workspace, until the code location is LOADED (bounded)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server.fail(f"dagster-webserver exited with {server.process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                pass
            body = json.dumps({"query": query}).encode()
            request = urllib.request.Request(
                f"{server.url}/graphql", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                entries = json.load(response)["data"]["workspaceOrError"].get("locationEntries") or []
            last = repr(entries)
            if any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries):
                return
        except (urllib.error.URLError, OSError, KeyError, TypeError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    server.fail(f"code location {LOCATION!r} not loaded within {STARTUP_TIMEOUT_S}s (last: {last})")


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
