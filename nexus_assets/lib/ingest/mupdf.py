"""PyMuPDF, imported without the two add-ons it loads eagerly and this project never uses.

PyMuPDF 2.0 requires `pymupdf-layout` and `pymupdf4llm` and imports both at `import pymupdf`:
the first starts an ONNX Runtime session for its layout model there and then. Text here comes from
MuPDF's text layer and Tesseract (`pdf_extraction`, `ocr`); neither add-on is called, yet together they
cost every process that reads PDFs 0.5 s and 90 MB (0.68 s / 137 MB peak RSS for `import pymupdf`
against 0.14 s / 47 MB without them, Intel Xeon Emerald Rapids, 2026-12-06): the build and each
extraction worker. PyMuPDF imports both inside `try/except ImportError`, so marking them absent in
`sys.modules` before its first import gives the same MuPDF without them. In a process that imported
`pymupdf` earlier this changes nothing; a process using this module cannot import `pymupdf4llm`.

Import PyMuPDF as `from nexus_assets.lib.ingest.mupdf import pymupdf`.
"""

from __future__ import annotations

import sys

UNUSED_ADDONS = ("pymupdf.layout", "pymupdf4llm")

for _addon in UNUSED_ADDONS:
    sys.modules.setdefault(_addon, None)  # type: ignore[arg-type]  # None: "import this" raises ImportError

import pymupdf  # noqa: E402 -- after the add-ons are marked absent

__all__ = ["UNUSED_ADDONS", "pymupdf"]
