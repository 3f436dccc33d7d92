"""OpenVINO, imported with its usage telemetry off.

`import openvino` imports its model converter (`openvino.tools.ovc`), which starts Intel's telemetry
client (`openvino_telemetry`) on the spot: with no consent file it counts as consent. Outside CI
(where it turns itself off) every process that imported OpenVINO wrote a client id under `~/intel/`,
and a model conversion started six threads sending events to Google Analytics (OpenVINO 2026.4,
checked with an empty HOME): a school server or build machine reaching out, or failing to, with
nothing said, which the project refuses for Chroma and Dagster too. Those threads also outlived the
build and held up the process's exit (`cli.script`).
OpenVINO imports the client inside `try/except ImportError` and then uses a stub that does nothing, so
marking it absent in `sys.modules` before the first `import openvino` turns it off; in a process that
imported OpenVINO earlier this changes nothing.

Import OpenVINO as `from nexus_assets.lib.index.openvino_offline import ov` (only where it is needed:
it costs an import that torch-only processes never pay).
"""

from __future__ import annotations

import sys

TELEMETRY_MODULE = "openvino_telemetry"

sys.modules.setdefault(TELEMETRY_MODULE, None)  # type: ignore[arg-type]  # None: "import this" raises ImportError

import openvino as ov  # noqa: E402 -- after the telemetry client is marked absent

__all__ = ["TELEMETRY_MODULE", "ov"]
