"""Delta size and pull time after one of ten PDFs of a partition changed (not a test).

    .venv/bin/python benchmarks/bench_vkp.py [--chunks-per-file 60] [--dims 384] [--rounds 3]

Publishes a partition of ten files (real packages: signed manifest, parquet tables, Chroma build;
deterministic unit vectors in place of the model, since the package sizes do not depend on which
model made the vectors), changes one file's text, publishes again, then serves `vkp/` from a local
HTTP server and times `pull` from v1.0.0 (the delta) and from nothing (the full package), each
including verification and installation. Prints the delta's share of the full package (target
under 15%) and the two pull times (median of `--rounds`).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.vkp_pull import Source, install_full, pull
from nexus_assets.lib.publish.signing import Signer
from nexus_assets_tests.support.vkp_helpers import PART, files_of, publish


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks-per-file", type=int, default=60)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    signer = Signer(Ed25519PrivateKey.generate(), "bench key")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        layout = DataLayout(root / "publisher")
        v1 = publish(layout, files_of(10, args.chunks_per_file), signer, dims=args.dims)
        v2 = publish(layout, files_of(10, args.chunks_per_file, changed={4: "revisi"}), signer, dims=args.dims)
        full_size = Path(v2.location).stat().st_size
        delta_size = Path(v2.delta_location).stat().st_size
        handler = functools.partial(_Quiet, directory=str(layout.vkp_dir))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        catalog = f"http://127.0.0.1:{server.server_address[1]}/catalog.json"
        times: dict[str, list[float]] = {"delta": [], "full": []}
        for round_ in range(args.rounds):
            for how in ("delta", "full"):
                school = root / f"school-{how}-{round_}"
                if how == "delta":  # the school holds v1.0.0 already
                    install_full(Path(v1.location), school, PART)
                started = time.perf_counter()
                [outcome] = pull(Source(catalog), school, signer.public_key)
                times[how].append(time.perf_counter() - started)
                assert outcome.via == how and outcome.installed_after == v2.version, outcome
        server.shutdown()
    print(f"chunks: {10 * args.chunks_per_file} in 10 files, one file changed; dims {args.dims}")
    print(
        f"full package v{v2.version}: {full_size / 1024:.0f} KiB; delta: {delta_size / 1024:.0f} KiB "
        f"= {100 * delta_size / full_size:.1f}% of the full package (target < 15%)"
    )
    print(
        f"pull over local HTTP, median of {args.rounds}: delta {statistics.median(times['delta']):.2f} s, "
        f"full {statistics.median(times['full']):.2f} s (download, verify, install)"
    )


if __name__ == "__main__":
    main()
