"""OCR of scanned pages through PyMuPDF's Tesseract integration (MuPDF links Tesseract itself).

MuPDF only needs Tesseract's language data (`*.traineddata`): Debian's `tesseract-ocr`,
`tesseract-ocr-ind` and `tesseract-ocr-eng` packages (`make ocr`) put them under
`/usr/share/tesseract-ocr/5/tessdata`. `TESSDATA_PREFIX` wins when set; otherwise PyMuPDF's own
discovery (`tesseract --list-langs`) finds them. Without language data OCR is unavailable: scanned
pages are then reported as pages without text, never dropped silently.

OCR is CPU-heavy (about 5-6 s per A4 page on one core here), so it runs only on pages that have no
text layer and do show an image, and its results go through the extraction cache like any other
extraction. `OcrEngine.cache_key` names the languages, resolution and Tesseract data, so a result
extracted without OCR is never reused by an OCR-capable run (and the other way round).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from nexus_assets.lib.core import hashing

if TYPE_CHECKING:
    import pymupdf

# Indonesian first: most of the curriculum is Indonesian; English for the rest (and for code listings).
DEFAULT_LANGUAGES = "ind+eng"
# Tesseract is tuned for glyphs 20-30 px high: 10-12 pt body text reaches that at 300 dpi, while at
# 150 dpi it is about half (measured on the shared scans: 5.2 s/page at 150 dpi, 6.0 s at 300, with
# fewer misread header lines at 300). Rendering the page above the scan's own resolution adds nothing.
DEFAULT_DPI = 300
OCR_ENV = "NEXUS_OCR"  # "off" disables OCR even where Tesseract is installed
LANGUAGES_ENV = "NEXUS_OCR_LANGUAGES"
# OCR of pictures without words (diagrams, grey scan noise) yields a few stray marks: below this
# many letters or digits a page counts as having no text rather than feeding noise to the index.
MIN_OCR_CHARS = 20
# OCR renders the whole page to an RGB pixmap (3 bytes a pixel) that Tesseract then copies and
# binarises. An A4 page at 300 dpi is 8.7 megapixels; a hostile page of 200 x 200 inches would be 3.6
# gigapixels (10.8 GB). Pages over this budget are rendered at the resolution that fits it (an A0
# poster at ~160 dpi: its type is large), and not at all when that falls under MIN_OCR_DPI.
MAX_OCR_PIXELS = 40_000_000
MIN_OCR_DPI = 72
_WORD_CHARS_RE = re.compile(r"[^\W_]", re.UNICODE)


@dataclass(frozen=True)
class OcrEngine:
    """Where Tesseract's language data is and how pages are read (picklable: sent to worker processes)."""

    tessdata: str
    languages: str = DEFAULT_LANGUAGES
    dpi: int = DEFAULT_DPI

    @property
    def cache_key(self) -> str:
        """Part of the extractor version: languages, dpi and a digest of the language data files used."""
        digest = hashing.new()
        for language in sorted(self.languages.split("+")):
            data = Path(self.tessdata) / f"{language}.traineddata"
            stat = data.stat()
            digest.update(f"{language}:{stat.st_size}:{int(stat.st_mtime)}".encode())
        return f"ocr-{self.languages}-{self.dpi}dpi-{digest.hexdigest()[:8]}"


def cache_key(engine: OcrEngine | None) -> str:
    return engine.cache_key if engine else "no-ocr"


@dataclass(frozen=True)
class OcrStatus:
    """What `find_ocr` decided, said in one sentence for logs and the UI."""

    engine: OcrEngine | None
    reason: str


def _tessdata_dir() -> str | None:
    from nexus_assets.lib.ingest.mupdf import pymupdf

    try:
        return pymupdf.get_tessdata()  # TESSDATA_PREFIX, else `tesseract --list-langs`, else a whereis search
    except (RuntimeError, OSError):
        return None


@cache
def find_ocr(languages: str = DEFAULT_LANGUAGES, enabled: bool = True) -> OcrStatus:
    """The OCR engine of this machine, or None with the reason (cached: discovery runs a subprocess).

    `enabled` and `languages` come from the settings ($NEXUS_OCR, $NEXUS_OCR_LANGUAGES)."""
    if not enabled:
        return OcrStatus(None, f"OCR disabled (${OCR_ENV}=off)")
    tessdata = _tessdata_dir()
    if not tessdata or not Path(tessdata).is_dir():
        return OcrStatus(
            None,
            "Tesseract language data not found (install tesseract-ocr, tesseract-ocr-ind and "
            "tesseract-ocr-eng: `make ocr`, or set TESSDATA_PREFIX)",
        )
    missing = [lang for lang in languages.split("+") if not (Path(tessdata) / f"{lang}.traineddata").is_file()]
    if missing:
        return OcrStatus(
            None,
            f"Tesseract language data for {', '.join(missing)} missing in {tessdata} "
            f"(install tesseract-ocr-{missing[0]})",
        )
    return OcrStatus(OcrEngine(str(tessdata), languages), f"OCR with Tesseract ({languages}, {DEFAULT_DPI} dpi)")


def ocr_unused_reason(languages: str = DEFAULT_LANGUAGES, enabled: bool = True) -> str:
    """Why a scanned page was not OCRed in an extraction that ran without an engine."""
    status = find_ocr(languages, enabled)
    return f"OCR unavailable: {status.reason}" if status.engine is None else "OCR not enabled for this extraction"


def needs_ocr(page: pymupdf.Page) -> bool:
    """A page without a text layer that shows at least one image: a scan. Blank pages are not OCRed."""
    return bool(page.get_image_info())


def legible(text: str) -> bool:
    return len(_WORD_CHARS_RE.findall(text)) >= MIN_OCR_CHARS


def ocr_resolution(
    width_pt: float, height_pt: float, engine: OcrEngine, max_pixels: int = MAX_OCR_PIXELS
) -> tuple[int | None, str]:
    """(dpi to OCR a page of this size at, "") within the pixel budget; (None, why) for a page too large."""
    area = (max(width_pt, 0.0) / 72) * (max(height_pt, 0.0) / 72)  # square inches
    if area <= 0 or area * engine.dpi**2 <= max_pixels:
        return engine.dpi, ""
    dpi = math.floor(math.sqrt(max_pixels / area))
    if dpi < MIN_OCR_DPI:
        return None, (
            f"page of {width_pt:,.0f} x {height_pt:,.0f} pt ({width_pt / 72 * 2.54:,.0f} x "
            f"{height_pt / 72 * 2.54:,.0f} cm) is too large to OCR: {max_pixels / 1e6:g} megapixels "
            f"allow only {dpi} dpi on it (at least {MIN_OCR_DPI} needed)"
        )
    return dpi, ""


def ocr_blocks(
    page: pymupdf.Page, engine: OcrEngine, dpi: int | None = None
) -> list[tuple[float, float, float, float, str, int, int]]:
    """Text blocks of the page as Tesseract reads its full rendering (same tuples as `get_text("blocks")`).

    `dpi` defaults to the engine's, reduced to keep the rendering within MAX_OCR_PIXELS (`ocr_resolution`).
    """
    if dpi is None:
        dpi, why = ocr_resolution(page.rect.width, page.rect.height, engine)
        if dpi is None:
            raise ValueError(why)
    textpage = page.get_textpage_ocr(language=engine.languages, dpi=dpi, full=True, tessdata=engine.tessdata)
    return page.get_text("blocks", textpage=textpage)
