"""A container engine for the image tests: the one that answers, or a private dockerd started here.

`docker info` answering (DOCKER_HOST or the default socket) is used as it is. Otherwise, where
`dockerd` is installed and we are root, one is started on a private socket (`--bridge none
--iptables=false`: no networks of its own, containers use `--network host` to reach loopback
services) with its data root under the cache directory, so the base image and the layers of the
locked dependencies survive between runs. Docker's layer cache is keyed by each instruction and the
checksums of the files it copies, so a changed lock or Dockerfile rebuilds what it must: the cache
is honest. One test at a time uses a data root (a file lock).

The offline base comes from scripts/build_base_image.sh (debootstrap from Debian's packages, then
`docker import`), tagged with that script's hash; the wheels of requirements.lock are fetched once
into a wheelhouse keyed by the lock's hash, with pip's own configured indexes, and served to the
build on loopback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nexus_assets_tests.support import PROJECT_ROOT

CACHE = Path(os.environ.get("NEXUS_TEST_DOCKER_CACHE", Path.home() / ".cache" / "nexus-assets"))
BASE_SCRIPT = PROJECT_ROOT / "scripts" / "build_base_image.sh"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# Debian bookworm's Python is 3.11.2; redis 8.2 needs async-timeout below 3.11.3, and requirements.lock,
# resolved on a newer 3.11, does not hold it. Until the lock is resolved for 3.11.2 too, the offline
# build installs it beside the lock (from PyPI into the wheelhouse).
DEBIAN_PYTHON_EXTRAS = ("async-timeout==5.0.1",)
WHEELHOUSE_PORT = 38417


class NoContainerEngine(RuntimeError):
    """No container engine can run here (the one reason the image tests skip)."""


def _docker(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)


def _answers(env: dict[str, str]) -> bool:
    try:
        return _docker(["info"], env, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def container_engine() -> Iterator[dict[str, str]]:
    """The environment (DOCKER_HOST) of a docker engine that runs containers; NoContainerEngine if none can."""
    if shutil.which("docker") is None:
        raise NoContainerEngine("no `docker` client on PATH")
    env = dict(os.environ)
    if _answers(env):
        yield env
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise NoContainerEngine("no docker engine answers `docker info` and `dockerd` is not installed")
    if os.geteuid() != 0:
        raise NoContainerEngine("no docker engine answers and starting dockerd needs root")
    from filelock import FileLock

    root = CACHE / "docker"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "lock")):
        run_dir = Path(f"/tmp/nexus-dockerd-{os.getpid()}")
        run_dir.mkdir(exist_ok=True)
        env["DOCKER_HOST"] = f"unix://{run_dir / 'docker.sock'}"
        log = run_dir / "dockerd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    dockerd,
                    "--host",
                    env["DOCKER_HOST"],
                    "--data-root",
                    str(root / "data"),
                    "--exec-root",
                    str(run_dir / "exec"),
                    "--pidfile",
                    str(run_dir / "docker.pid"),
                    "--bridge",
                    "none",
                    "--iptables=false",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            while not _answers(env):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise NoContainerEngine(f"dockerd did not start: {log.read_text(errors='replace')[-1500:]}")
                time.sleep(0.5)
            yield env
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            # dockerd leaves its default network namespace mounted in the exec root.
            netns = run_dir / "exec" / "netns" / "default"
            if os.path.ismount(netns):
                subprocess.run(["umount", str(netns)], capture_output=True, timeout=30)
            shutil.rmtree(run_dir, ignore_errors=True)


def _hash(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def offline_base_image(env: dict[str, str]) -> str:
    """The debootstrapped bookworm base, imported if absent (the tarball is cached by the script)."""
    tag = f"nexus-base:bookworm-{_hash(BASE_SCRIPT)}"
    if _docker(["image", "inspect", tag], env).returncode != 0:
        done = subprocess.run(
            ["bash", str(BASE_SCRIPT), tag],
            env={**env, "NEXUS_BASE_CACHE": str(CACHE / "base")},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{BASE_SCRIPT.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return tag


def wheelhouse(lock: Path = PROJECT_ROOT / "requirements.lock") -> Path:
    """Every wheel of `lock` in a directory keyed by its hash, with an index.html for `pip --find-links`."""
    target = CACHE / f"wheelhouse-{_hash(lock)}"
    index = target / "index.html"
    if index.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-r", str(lock), "-d", str(target)]
    done = subprocess.run(download, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:  # torch's +cpu build is only on PyTorch's index (as `make install` retries)
        retry = [*download, "--extra-index-url", TORCH_INDEX]
        done = subprocess.run(retry, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"pip download of {lock.name} failed:\n{done.stderr[-3000:]}")
    extras = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *DEBIAN_PYTHON_EXTRAS, "-d", str(target)]
    done = subprocess.run(extras, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"pip download of {' '.join(DEBIAN_PYTHON_EXTRAS)} failed:\n{done.stderr[-3000:]}")
    links = "".join(f'<a href="{p.name}">{p.name}</a>\n' for p in sorted(target.glob("*.whl")))
    index.write_text(f"<html><body>\n{links}</body></html>\n")
    return target


@contextmanager
def serve_directory(root: Path, port: int = WHEELHOUSE_PORT) -> Iterator[str]:
    """`root` over HTTP on 127.0.0.1 (stdlib file server: HTML pages as text/html, as pip requires).

    On a fixed port by default: the URL is part of the build argument, and a build argument that
    changes misses docker's cache of the lock's layer (a reinstall of every package). A free port
    where that one is taken."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
