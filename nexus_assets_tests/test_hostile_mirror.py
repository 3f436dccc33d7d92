"""A loopback hostile mirror against `nexus vkp pull` (issue 25): stalling, trickling, redirecting (within
the origin, to another origin, to ftp://), flaky (503 + Retry-After), lying (length, type) and endless.

Each case asserts the exit code, the message and what is left on disk. Small deadlines come from the
NEXUS_PULL_* settings, so no case waits long; every server loop is bounded, and everything is 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.cli import cli
from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.http_fetch import FetchSettings, retry_after
from nexus_assets.lib.distribution.vkp_pull import CATALOG_STATE, PullError, Source, installed_release, pull
from nexus_assets.lib.publish.signing import Signer, public_pem
from nexus_assets_tests.support.http_files import Files, serving
from nexus_assets_tests.support.vkp_helpers import PART, files_of, publish

SIGNER = Signer(Ed25519PrivateKey.generate(), "publisher key")
FAST = FetchSettings(
    connect_timeout=1, read_timeout=0.5, catalog_deadline=3, request_deadline=3, min_rate=2000, rate_window=1,
    attempts=3, max_wait=2, backoff=0.05,
)  # fmt: skip
FAST_ENV = {
    "NEXUS_PULL_CONNECT_TIMEOUT": "1",
    "NEXUS_PULL_READ_TIMEOUT": "0.5",
    "NEXUS_PULL_CATALOG_DEADLINE": "3",
    "NEXUS_PULL_REQUEST_DEADLINE": "3",
    "NEXUS_PULL_MIN_RATE": "2000",
    "NEXUS_PULL_RATE_WINDOW": "1",
    "NEXUS_PULL_ATTEMPTS": "3",
    "NEXUS_PULL_MAX_WAIT": "2",
}
MAX_STALL_STEPS = 40  # a stalling or trickling handler gives up after this many steps (bounded loops)
SLOW_STEPS = 200  # header trickles: 10 s, past every deadline here, so a pull that waits for them is caught


class Hostile(Files):
    """Files from `root`; `plan[name]` lists what the next requests of `name` get (then honest service)."""

    root: Path
    plan: dict[str, list[str]]
    seen: list[str]
    other_origin: str

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/").split("?")[0]
        self.seen.append(name)
        getattr(type(self), "auth", []).append(self.headers.get("Authorization"))
        actions = self.plan.get(name) or []
        action = actions.pop(0) if actions else "serve"
        try:
            getattr(self, f"_{action.replace('-', '_')}")(name)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _data(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def _serve(self, name: str) -> None:  # honest: the static files with Range support
        Files.do_GET(self)

    def _stall(self, name: str) -> None:  # accept, then say nothing
        for _ in range(MAX_STALL_STEPS):
            time.sleep(0.25)

    def _trickle(self, name: str) -> None:  # honest headers, then a byte every 0.2 s
        data = self._data(name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for byte in data[:MAX_STALL_STEPS]:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.2)

    def _slow_headers(self, name: str) -> None:  # a status line, then one header byte every 0.05 s (10 s)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(SLOW_STEPS):
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(0.05)

    def _continue_forever(self, name: str) -> None:  # `100 Continue` after `100 Continue` (10 s)
        for _ in range(SLOW_STEPS):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
            time.sleep(0.05)

    def _unavailable(self, name: str) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _unavailable_for_ages(self, name: str) -> None:  # come back in 31,000 years
        self.send_response(503)
        self.send_header("Retry-After", "1000000000000")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _escapes(self, name: str) -> None:  # a reason phrase that clears the screen and fakes success
        self.send_response(503, "\x1b]0;PWNED\x07\x1b[2J\x1b[1;32mALL GOOD\x1b[0m")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _redirect_odd(self, name: str) -> None:
        self._redirect("http://[\x1b[2J/x")

    def _redirect_same(self, name: str) -> None:
        self._redirect(f"/moved/{name}")

    def _redirect_other(self, name: str) -> None:
        self._redirect(f"{self.other_origin}{name}")

    def _redirect_bad_port(self, name: str) -> None:
        self._redirect(f"http://127.0.0.1:99999/{name}")

    def _redirect_ftp(self, name: str) -> None:
        self._redirect(f"ftp://127.0.0.1/{name}")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _short(self, name: str) -> None:  # Content-Length says less than the file
        data = self._data(name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) // 2))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])

    def _cut(self, name: str) -> None:  # Content-Length says the whole file, the connection ends at half
        data = self._data(name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.connection.shutdown(2)

    def _whole_as_206(self, name: str) -> None:  # a resume answered with the whole file, as a 206 from byte 0
        self._partial_from(name, 0)

    def _wrong_start_206(self, name: str) -> None:  # a resume answered from byte 1, not the byte asked for
        self._partial_from(name, 1)

    def _partial_from(self, name: str, start: int) -> None:
        data = self._data(name)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def _empty(self, name: str) -> None:  # 200 with nothing in it
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _two_lengths(self, name: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "10")
        self.send_header("Content-Length", "20")
        self.end_headers()
        self.wfile.write(b"x" * 20)

    def _not_http(self, name: str) -> None:
        self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n" + b"\x00" * 100)

    def _html(self, name: str) -> None:
        body = b"<html><body>Captive portal: please log in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _endless(self, name: str) -> None:  # no length, zeros until the client hangs up (at most 64 MiB)
        self.send_response(200)
        self.end_headers()
        for _ in range(1024):
            self.wfile.write(b"\0" * 65536)


class Counting(BaseHTTPRequestHandler):
    hits: list[str]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_error(404)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, type[Hostile], DataLayout, Path, list[str]]]:
    """A publisher at v1.0.0 installed on a school through the mirror, then v1.0.1 published on it."""
    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), SIGNER)
    hits: list[str] = []
    other = type("Other", (Counting,), {"hits": hits})
    with serving(other) as other_url:
        handler = type(
            "Mirror",
            (Hostile,),
            {
                "root": layout.vkp_dir,
                "plan": {},
                "seen": [],
                "other_origin": other_url,
                "cut": {},
                "ranges": [],
                "auth": [],
            },  # fmt: skip
        )
        (layout.vkp_dir / "moved").symlink_to(".")
        with serving(handler) as url:
            dest = tmp_path / "school"
            [first] = pull(Source(url + "catalog.json", FAST), dest, SIGNER.public_key)
            assert first.installed_after == "1.0.0"
            publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
            yield url, handler, layout, dest, hits


def _update_names(layout: DataLayout) -> list[str]:
    """The packages the update may fetch: its delta, then (when the delta fails) the full package."""
    version = json.loads((layout.vkp_dir / "catalog.json").read_text())["partitions"][PART.label]["versions"][0]
    return [ref["name"] for ref in (version["delta"], version["full"]) if ref]


def _fault(handler: type[Hostile], names: list[str], action: str, times: int = 1) -> None:
    for name in names:
        handler.plan[name] = [action] * times


def _cli_pull(url: str, dest: Path, tmp_path: Path, **extra: str):
    key = tmp_path / "publisher.pub"
    key.write_bytes(public_pem(SIGNER.public_key))
    runner = CliRunner()
    return runner.invoke(
        cli,
        ["vkp", "pull", "--catalog", url, "--dest", str(dest), "--public-key", str(key), "--quiet"],
        env={**FAST_ENV, **extra},
        catch_exceptions=False,
    )


def _leftovers(dest: Path) -> list[str]:
    found = [p.name for p in (dest / ".downloads").iterdir()] if (dest / ".downloads").is_dir() else []
    found += [p.name for p in dest.glob("*/releases/.staging-*")]
    return sorted(found)


@pytest.mark.reliability("security", "the catalog stalls: connection accepted, nothing sent")
def test_a_stalling_catalog_is_cut_off_by_the_deadline(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    serving_before = installed_release(dest, PART)
    handler.plan["catalog.json"] = ["stall"] * 10
    started = time.monotonic()
    with pytest.raises(PullError, match="timed out"):
        pull(Source(url + "catalog.json", FAST), dest, SIGNER.public_key)
    took = time.monotonic() - started  # timed in process: the CLI's own start-up is not the mirror's doing
    result = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert result.exit_code == 1, result.output
    assert "cannot read the catalog" in result.output and "timed out" in result.output, result.output
    assert "Errno" not in result.output and "urlopen" not in result.output
    assert took < 5, f"the catalog deadline is 3 s, the pull took {took:.1f} s"
    assert installed_release(dest, PART) == serving_before and _leftovers(dest) == []
    reliability(f"exit 1 after {took:.1f} s (deadline 3 s): {result.output.strip().splitlines()[-1][:110]}")


@pytest.mark.reliability("security", "the catalog and a package trickle one byte every 0.2 s")
def test_a_trickle_is_cut_off_and_the_next_pull_resumes(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    handler.plan["catalog.json"] = ["trickle"] * 5
    started = time.monotonic()
    with pytest.raises(PullError, match="cannot read the catalog") as catalog:
        pull(Source(url + "catalog.json", FAST), dest, SIGNER.public_key)
    assert time.monotonic() - started < 8
    handler.plan.clear()
    names = _update_names(layout)
    _fault(handler, names, "trickle", 3)
    serving_before = installed_release(dest, PART)
    result = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert result.exit_code == 1 and "failed" in result.output, result.output
    assert installed_release(dest, PART) == serving_before
    assert _leftovers(dest) == sorted(f"{n}.part" for n in names), "partial downloads are kept to resume"
    again = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert again.exit_code == 0, again.output
    assert installed_release(dest, PART) != serving_before and _leftovers(dest) == []
    reliability(f'catalog: "{str(catalog.value)[:100]}"; package: exit 1, .part kept; next pull exit 0, nothing left')


@pytest.mark.reliability(
    "security", "redirects: within the origin (followed), to another origin and to ftp:// (refused)"
)
def test_redirects_stay_within_the_catalogs_origin(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, hits = mirror
    handler.plan["catalog.json"] = ["redirect-other"]
    other = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert other.exit_code == 1 and "outside the catalog's origin" in other.output, other.output
    assert hits == [], "no request reached the other origin"
    handler.plan["catalog.json"] = ["redirect-ftp"]
    ftp = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert ftp.exit_code == 1 and "scheme ftp:// is not allowed" in ftp.output, ftp.output
    names = _update_names(layout)
    _fault(handler, names, "redirect-other")
    package = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert package.exit_code == 1 and "outside the catalog's origin" in package.output and hits == []
    assert _leftovers(dest) == []
    handler.plan["catalog.json"] = ["redirect-same"]
    _fault(handler, names, "redirect-same")
    same = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert same.exit_code == 0, same.output
    assert "moved/catalog.json" in handler.seen and f"moved/{names[0]}" in handler.seen
    reliability(
        f'other origin: exit 1, "{other.output.strip().splitlines()[-1][-90:]}", no request sent there; ftp: exit 1; '
        "same origin: followed, installed"
    )


@pytest.mark.reliability("security", "flaky: 503 with Retry-After: 1 on the catalog and on the package")
def test_a_503_with_retry_after_is_retried(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    handler.plan["catalog.json"] = ["unavailable"]
    _fault(handler, _update_names(layout), "unavailable")
    started = time.monotonic()
    result = _cli_pull(url + "catalog.json", dest, tmp_path)
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert handler.seen.count("catalog.json") >= 3  # the fixture's, the 503 and the retry
    assert took >= 2, "each retry waited the Retry-After second"
    assert _leftovers(dest) == []
    handler.plan["catalog.json"] = ["unavailable"] * 5
    gave_up = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert gave_up.exit_code == 1 and "HTTP 503" in gave_up.output and "attempt" in gave_up.output, gave_up.output
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0 and retry_after("7") == 7 and retry_after("x") is None
    reliability(
        f"one 503 each: retried after Retry-After, installed in {took:.1f} s; "
        f"always 503: exit 1, {gave_up.output.strip()[-80:]!r}"
    )


@pytest.mark.reliability(
    "security", "lying: a package with a short Content-Length, one cut mid-body, a catalog served as HTML"
)
def test_lying_lengths_and_types_are_refused_or_resumed(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    names = _update_names(layout)
    serving_before = installed_release(dest, PART)
    handler.plan["catalog.json"] = ["html"]
    html = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert html.exit_code == 1 and "not valid JSON" in html.output, html.output
    _fault(handler, names, "short", 3)
    short = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert short.exit_code == 1 and "incomplete" in short.output, short.output
    assert installed_release(dest, PART) == serving_before
    _fault(handler, names, "cut")
    cut = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert cut.exit_code == 0, cut.output  # resumed from what arrived, with a Range request
    assert installed_release(dest, PART) != serving_before and _leftovers(dest) == []
    reliability(
        "HTML catalog: exit 1 (not valid JSON); short length: exit 1, old release serving; cut: resumed, exit 0"
    )


@pytest.mark.reliability(
    "security", "endless: a catalog with no length sending zeros; a refused connection; an ftp:// catalog"
)
def test_endless_refused_and_foreign_catalogs(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    handler.plan["catalog.json"] = ["endless"]
    endless = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert endless.exit_code == 1 and "larger than 16777216 bytes" in endless.output, endless.output
    refused = _cli_pull("http://127.0.0.1:9/catalog.json", dest, tmp_path, NEXUS_PULL_ATTEMPTS="1")
    assert refused.exit_code == 1 and "connection refused" in refused.output and "Errno" not in refused.output
    ftp = _cli_pull("ftp://127.0.0.1/catalog.json", dest, tmp_path)
    assert ftp.exit_code == 1 and "scheme ftp:// is not allowed" in ftp.output, ftp.output
    no_http = _cli_pull(url + "catalog.json", dest, tmp_path, NEXUS_PULL_SCHEMES="https")
    assert no_http.exit_code == 1 and "scheme http:// is not allowed" in no_http.output
    assert _leftovers(dest) == [] and (dest / CATALOG_STATE).is_file()
    reliability(
        f'endless: "{endless.output.strip()[-70:]}"; refused: "{refused.output.strip()[-60:]}"; ftp and '
        "unconfigured http: exit 1 naming the scheme"
    )


@pytest.mark.reliability("security", "a second pull while the first is stuck on a trickling mirror")
def test_a_second_pull_exits_at_once_while_one_runs(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    handler.plan["catalog.json"] = ["trickle"] * 10
    first = threading.Thread(target=lambda: _ignore_error(url, dest), daemon=True)
    first.start()
    time.sleep(0.5)
    started = time.monotonic()
    with pytest.raises(PullError, match="another pull is running"):
        pull(Source(url + "catalog.json", FAST), dest, SIGNER.public_key)
    assert time.monotonic() - started < 1
    second = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert second.exit_code == 1 and "another pull is running" in second.output, second.output
    first.join(timeout=15)
    assert not first.is_alive(), "the first pull ended within its catalog deadline"
    reliability("the second pull exits 1 at once (lock); the first ends by its catalog deadline: no pile-up")


def _ignore_error(url: str, dest: Path) -> None:
    try:
        pull(Source(url + "catalog.json", FAST), dest, SIGNER.public_key)
    except PullError:
        pass


@pytest.mark.reliability("security", "header lines one byte at a time; 100 Continue without end (catalog and package)")
@pytest.mark.parametrize("action", ["slow-headers", "continue-forever"])
def test_slow_headers_are_cut_off_by_the_deadline(mirror, tmp_path: Path, action: str, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    serving_before = installed_release(dest, PART)
    handler.plan["catalog.json"] = [action] * 5
    started = time.monotonic()
    with pytest.raises(PullError, match="deadline") as catalog:
        pull(Source(url + "catalog.json", FAST), dest, SIGNER.public_key)
    took = time.monotonic() - started
    assert took < 5, f"the catalog deadline is 3 s (connect, headers and body), the pull took {took:.1f} s"
    handler.plan.clear()
    names = _update_names(layout)
    _fault(handler, names, action)
    started = time.monotonic()
    [outcome] = pull(Source(url + "catalog.json", replace(FAST, attempts=1)), dest, SIGNER.public_key)
    package_took = time.monotonic() - started
    assert outcome.via == "failed" and "deadline" in "; ".join(outcome.problems), outcome
    assert package_took < 2 * 3 + 3, f"two packages of 3 s deadline each took {package_took:.1f} s"
    assert installed_release(dest, PART) == serving_before
    again = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert again.exit_code == 0 and _leftovers(dest) == [], again.output
    reliability(f'{action}: catalog cut after {took:.1f} s (deadline 3 s): "{str(catalog.value)[-80:]}"')


@pytest.mark.reliability(
    "bad input", "bad URLs: Unicode-digit and out-of-range ports, no host, a broken IPv6 host, an s3:// bucket alone"
)
def test_bad_urls_are_final_errors_in_words(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    port = url.rsplit(":", 1)[1].split("/")[0]
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in port)  # "８０": int() reads it, no URL parser should
    cases = [
        (f"http://127.0.0.1:{fullwidth}/catalog.json", "is not a number in 1..65535"),
        ("http://127.0.0.1:99999/catalog.json", "is not a number in 1..65535"),
        ("http://127.0.0.1:0/catalog.json", "is not a number in 1..65535"),
        ("http:///catalog.json", "no host"),
        ("http://[::1/catalog.json", "not a valid URL"),
        ("s3://bucket", "no object key"),
    ]
    for bad, says in cases:
        started = time.monotonic()
        result = _cli_pull(bad, dest, tmp_path)
        assert result.exit_code == 1 and says in result.output, (bad, result.output)
        assert "attempt" not in result.output and time.monotonic() - started < 2, f"{bad}: a usage error was retried"
    # Spaces and control characters are refused by the --catalog option itself: a usage error, exit 2.
    for bad in ("http://127.0.0.1:80 /catalog.json", "http://127.0.0.1/cat\x1balog.json"):
        started = time.monotonic()
        result = _cli_pull(bad, dest, tmp_path)
        assert result.exit_code == 2 and "is not a usable URL" in result.output, (bad, result.output)
        assert "attempt" not in result.output and time.monotonic() - started < 2, f"{bad}: a usage error was retried"
    handler.plan["catalog.json"] = ["redirect-bad-port"]
    redirected = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert redirected.exit_code == 1 and "is not a number in 1..65535" in redirected.output, redirected.output
    assert handler.seen.count("catalog.json") == 2, "the fixture's request and one more: not retried"
    reliability(f'exit 1 at once, in words, never retried: "{result.output.strip()[-70:]}"')


@pytest.mark.reliability("security", "file://host/path (another machine's file) and credentials in the catalog URL")
def test_file_urls_name_this_machine_and_credentials_are_never_shown(
    mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    import shutil

    url, handler, layout, dest, _ = mirror
    monkeypatch.chdir(tmp_path)
    shutil.copytree(layout.vkp_dir, tmp_path / "fileserver", symlinks=True)
    remote = _cli_pull("file://fileserver/catalog.json", dest, tmp_path)
    assert remote.exit_code == 1 and "file:// URL for host 'fileserver'" in remote.output, remote.output
    assert installed_release(dest, PART).name.startswith("1.0.0-"), "nothing was read from a relative path"
    secret_url = url.replace("http://", "http://school:s3cret%21@") + "catalog.json"
    handler.plan["catalog.json"] = ["stall"] * 10
    failed = _cli_pull(secret_url, dest, tmp_path)
    assert failed.exit_code == 1 and "timed out" in failed.output and "***@127.0.0.1" in failed.output, failed.output
    assert "s3cret" not in failed.output
    handler.plan.clear()
    ok = _cli_pull(secret_url, dest, tmp_path, NEXUS_OUTPUT="json")
    assert ok.exit_code == 0 and "s3cret" not in ok.output, ok.output
    assert "s3cret" not in (dest / CATALOG_STATE).read_text()
    assert handler.auth[-1] == "Basic " + __import__("base64").b64encode(b"school:s3cret!").decode()
    local = _cli_pull(f"file://localhost{layout.vkp_dir}/catalog.json", dest, tmp_path)
    assert local.exit_code == 0, local.output
    reliability(f'file://host: exit 1 "{remote.output.strip()[-70:]}"; credentials sent as Basic auth, shown as ***')


@pytest.mark.reliability("security", "an s3:// mirror: the pull's timeouts and attempts, a trickling S3 endpoint")
def test_s3_pulls_have_the_pulls_timeouts_and_deadline(mirror, tmp_path: Path, aws_env, reliability) -> None:
    import boto3

    from nexus_assets.lib.distribution.vkp_pull import s3_client

    url, handler, layout, dest, _ = mirror
    moto = aws_env["NEXUS_AWS_ENDPOINT_URL"]
    client = s3_client(FAST, endpoint_url=moto, region_name="us-east-1")
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (1, 0.5)
    assert client.meta.config.retries["total_max_attempts"] == 1, "the pull's own loop makes the attempts"
    boto3.client("s3", endpoint_url=moto, region_name="us-east-1").create_bucket(Bucket="school-mirror")
    for path in layout.vkp_dir.iterdir():
        if path.is_file():
            client.put_object(Bucket="school-mirror", Key=f"vkp/{path.name}", Body=path.read_bytes())
    [outcome] = pull(Source("s3://school-mirror/vkp/catalog.json", FAST, s3_client=client), dest, SIGNER.public_key)
    assert outcome.via in ("delta", "full"), outcome
    publish(layout, files_of(2, changed={0: "lagi"}), SIGNER)
    (layout.vkp_dir / "bucket").symlink_to(".")
    names = _update_names(layout)
    for name in names:
        handler.plan[f"bucket/{name}"] = ["trickle"]
    hostile = s3_client(replace(FAST, attempts=1), endpoint_url=url.rstrip("/"), region_name="us-east-1")
    started = time.monotonic()
    [trickled] = pull(
        Source("s3://bucket/catalog.json", replace(FAST, attempts=1), s3_client=hostile), dest, SIGNER.public_key
    )
    took = time.monotonic() - started
    assert trickled.via == "failed" and "bytes/s" in "; ".join(trickled.problems), trickled
    assert took < 6, f"two trickled packages, 1 s rate window each, took {took:.1f} s"
    reliability(f"moto: installed with the pull's timeouts; a trickling endpoint cut in {took:.1f} s")


@pytest.mark.reliability(
    "bad input", "NEXUS_PULL_MAX_WAIT=1e20 with Retry-After: 10^12; non-ASCII digits and inf in NEXUS_PULL_*"
)
def test_pauses_are_bounded_and_settings_are_ascii_finite(mirror, tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.distribution.http_fetch import MAX_WAIT_CEILING, FetchError, pause_before
    from nexus_assets.settings import Settings

    url, handler, layout, dest, _ = mirror
    for variable, value in [
        ("NEXUS_PULL_MAX_WAIT", "1e20"),
        ("NEXUS_PULL_MAX_WAIT", "1e9"),
        ("NEXUS_PULL_MIN_RATE", "1e400"),
        ("NEXUS_PULL_ATTEMPTS", "\u0663"),  # Arabic-Indic 3
        ("NEXUS_PULL_READ_TIMEOUT", "\uff11\uff10"),  # full-width 10
        ("NEXUS_PULL_CATALOG_DEADLINE", "nan"),
    ]:
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})
        result = _cli_pull(url + "catalog.json", dest, tmp_path, **{variable: value})
        assert result.exit_code == 2 and f"bad setting: {variable}" in result.output, result.output
    ages = FetchError("HTTP 503", transient=True, retry_after=1e12)
    assert pause_before(0, ages, FetchSettings(max_wait=1e20)) <= MAX_WAIT_CEILING + 1
    handler.plan["catalog.json"] = ["unavailable-for-ages"] * 5
    started = time.monotonic()
    result = _cli_pull(url + "catalog.json", dest, tmp_path)
    took = time.monotonic() - started
    assert result.exit_code == 1 and "HTTP 503" in result.output and took < 10, (took, result.output)
    reliability(f"refused by name (exit 2); Retry-After 10^12 capped to NEXUS_PULL_MAX_WAIT: exit 1 in {took:.1f} s")


@pytest.mark.reliability(
    "security", "a resume answered with the whole file as 206 from byte 0, or from another byte than asked"
)
def test_a_resume_answered_from_the_wrong_byte(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    names = _update_names(layout)
    serving_before = installed_release(dest, PART)
    _fault(handler, names, "cut")
    cut = _cli_pull(url + "catalog.json", dest, tmp_path, NEXUS_PULL_ATTEMPTS="1")
    assert cut.exit_code == 1 and _leftovers(dest) == sorted(f"{n}.part" for n in names), cut.output
    _fault(handler, names, "wrong-start-206", 3)
    wrong = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert wrong.exit_code == 1 and "the mirror answered bytes 1-: refused" in wrong.output, wrong.output
    assert installed_release(dest, PART) == serving_before
    _fault(handler, names, "whole-as-206")
    whole = _cli_pull(url + "catalog.json", dest, tmp_path)
    assert whole.exit_code == 0, whole.output  # the whole file: started over, not appended to the .part
    assert installed_release(dest, PART) != serving_before and _leftovers(dest) == []
    reliability(f'wrong start: exit 1 "{wrong.output.strip()[-90:]}"; whole file as 206: started over, exit 0')


@pytest.mark.reliability(
    "security", "terminal escapes in a mirror's reason phrase (catalog and package) and in a redirect's Location"
)
def test_a_mirrors_terminal_escapes_are_shown_escaped(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    handler.plan["catalog.json"] = ["escapes"] * 5
    catalog = _cli_pull(url + "catalog.json", dest, tmp_path, NEXUS_PULL_ATTEMPTS="1")
    _fault(handler, _update_names(layout), "escapes", 5)
    package = _cli_pull(url + "catalog.json", dest, tmp_path, NEXUS_PULL_ATTEMPTS="1", NEXUS_OUTPUT="json")
    handler.plan["catalog.json"] = ["redirect-odd"]
    odd = _cli_pull(url + "catalog.json", dest, tmp_path, NEXUS_PULL_ATTEMPTS="1")
    for result in (catalog, package, odd):
        assert result.exit_code == 1, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, repr(result.output)
    assert "HTTP 503 \\x1b]0;PWNED\\x07" in catalog.output and "\\x1b[2J" in package.output, package.output
    assert "ValueError" not in odd.output and "Traceback" not in odd.output, odd.output
    reliability(f'escaped: "{catalog.output.strip()[-90:]}"')


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.reliability("security", "a mirror with an untrusted (self-signed) TLS certificate")
def test_an_untrusted_certificate_is_named_and_not_retried(mirror, tmp_path: Path, reliability) -> None:
    import ssl
    from http.server import ThreadingHTTPServer

    url, handler, layout, dest, _ = mirror
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        result = _cli_pull(f"https://127.0.0.1:{server.server_address[1]}/catalog.json", dest, tmp_path)
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1 and "TLS certificate verification failed" in result.output, result.output
    assert "operation not permitted" not in result.output and "attempts" not in result.output and took < 3
    reliability(f'exit 1 at once, not retried: "{result.output.strip()[-100:]}"')


@pytest.mark.reliability("bad input", "odd replies: an empty 200, two Content-Lengths, a reply that is not HTTP")
def test_odd_replies_are_described_in_words(mirror, tmp_path: Path, reliability) -> None:
    url, handler, layout, dest, _ = mirror
    names = _update_names(layout)
    said = {}
    for action, words in [
        ("empty", "the source ended before the catalog's size"),
        ("two-lengths", "headers are malformed"),
        ("not-http", "not valid HTTP"),
    ]:
        _fault(handler, names, action)
        result = _cli_pull(url + "catalog.json", dest, tmp_path, NEXUS_PULL_ATTEMPTS="1")
        assert result.exit_code == 1 and words in result.output, (action, result.output)
        assert ": None" not in result.output and "InvalidHeader" not in result.output, result.output
        assert "after 1 attempts" not in result.output
        said[action] = words
    reliability(f"exit 1 in words: {said}")
