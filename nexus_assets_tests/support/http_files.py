"""Static files over HTTP on loopback, with Range support and connections cut on purpose.

`serve_files(root)` yields the base URL and the handler class; set `handler.cut[name] = n` to drop the
first GET of `name` after n bytes, and read `handler.ranges` for the Range headers received. The
`http_root` fixture (conftest.py) serves `<tmp_path>/publisher/vkp`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Files(BaseHTTPRequestHandler):
    """Static files with Range support; the first GET of a name in `cut` drops the connection midway."""

    root: Path
    cut: dict[str, int]
    ranges: list[str]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        header = self.headers.get("Range")
        self.ranges.append(f"{path.name} {header}")
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        limit = self.cut.pop(path.name, None)
        if limit is not None:
            self.wfile.write(data[start : start + limit])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data[start:])


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on a free loopback port in a background thread: the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_files(root: Path) -> Iterator[tuple[str, type[Files]]]:
    handler = type("Files", (Files,), {"root": root, "cut": {}, "ranges": []})
    with serving(handler) as url:
        yield url, handler
