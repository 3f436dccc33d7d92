"""Boilerplate removal from the PDF's layout: text a file repeats, wherever on the page it sits.

Running headers and footers are not the only repeated text that ends up in chunks and outranks the
page that answers a question. Real books and articles also repeat, on many pages:
- blocks inside the page body (a contest book's "Authorship / License / Creative Commons" box under
  every task), sometimes with a word or a number changed (near-duplicates);
- text at the same place on many pages that is not in the top or bottom margin (a side tab, a
  journal's logo line, a form's label);
- rotated or side-margin strips (a vertical "Downloaded from … Terms and Conditions" line down the
  edge of every page of a journal article), which would otherwise be glued onto the first chunk.

PyMuPDF gives each line's writing direction and bounding box (`page.get_text("dict")`); `page_blocks`
keeps them with each block, and `find_boilerplate` decides, across the whole file, what to drop.
Every rule asks for repetition on at least `MIN_REPEAT_PAGES` pages, so text that appears once is
never dropped (a vertical Japanese page, a rotated figure label, a page turned sideways all stay),
inside a near-duplicate block only the lines the repeats share are dropped (a line the block has
of its own stays), and repeated body text that is all of its page's text stays. What was dropped is
counted per rule with an example (`BoilerplateReport`), which extraction records in the file's
notes (`pdf_text.notes`) for a data engineer to audit.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pymupdf

# A block lies in the top or bottom margin when it ends above / starts below this share of the page.
MARGIN_SHARE = 0.12
# ... and in a side margin when it lies within this share of the page's width from the left or right edge.
SIDE_SHARE = 0.08
# A line is rotated when its direction vector leaves the horizontal by more than this (sin of the angle).
ROTATED_SIN = 0.2
# Repetition needed before anything is called boilerplate: never text that appears once (or twice).
MIN_REPEAT_PAGES = 3
# Text at the same place on the page must repeat on this share of the file's pages (as a running header).
SAME_PLACE_SHARE = 0.5
POSITION_GRID = 0.02  # bounding boxes compared on a grid of 2% of the page
# A body block is a repeated-block candidate from this many characters (shorter repeated lines, such as
# "Jawaban:" or "Kerjakan dengan teliti.", are templated content, not boilerplate).
MIN_BODY_CHARS = 40
# ... and boilerplate when its copies are on this share of the file's pages too (a code listing or a
# definition a book repeats two or three times is content; a licence box under every task is not).
BODY_REPEAT_SHARE = 0.1
NEAR_DUPLICATE_JACCARD = 0.8  # over word 3-shingles
ANCHOR_TOKENS = 6  # near-duplicates are looked for among blocks sharing their first or last words
MAX_MARGIN_CHARS = 200
EXAMPLE_CHARS = 90
NOTE_PREFIX = "boilerplate removed:"  # the file's note (pdf_text.notes, notes are "; "-separated)

_DIGITS_RE = re.compile(r"\d+")
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of the page's width and height


class Block(NamedTuple):
    """One text block of a page, with where it sits (unknown position: `bbox` None)."""

    text: str
    in_margin: bool  # lies in the top or bottom margin (see MARGIN_SHARE)
    bbox: Box | None = None
    rotated: bool = False  # its lines are not horizontal
    side: bool = False  # lies in the left or right margin strip (see SIDE_SHARE)


def as_block(raw: Sequence) -> Block:
    """A `Block` from a block or from the older `(text, in_margin)` pair."""
    return raw if isinstance(raw, Block) else Block(*raw)


def _box(x0: float, y0: float, x1: float, y1: float, page: pymupdf.Page) -> Box:
    rect = page.rect
    width, height = rect.width or 1.0, rect.height or 1.0
    return ((x0 - rect.x0) / width, (y0 - rect.y0) / height, (x1 - rect.x0) / width, (y1 - rect.y0) / height)


def _block(text: str, box: Box, rotated: bool = False) -> Block:
    in_margin = box[3] <= MARGIN_SHARE or box[1] >= 1 - MARGIN_SHARE
    side = box[2] <= SIDE_SHARE or box[0] >= 1 - SIDE_SHARE
    return Block(text, in_margin, tuple(round(v, 4) for v in box), rotated, side)  # type: ignore[arg-type]


def page_blocks(page: pymupdf.Page, raw_blocks: list | None = None) -> list[Block]:
    """The page's text blocks in content-stream order, each with its box, margin flags and direction.

    `raw_blocks` are tuples as `page.get_text("blocks")` gives them (OCR's blocks): those carry no
    direction. A text layer is read with `get_text("dict")`; a block's rotated lines become a block of
    their own, so a vertical margin strip is never glued onto the paragraph it runs beside.
    """
    if raw_blocks is not None:
        return [_block(b[4], _box(b[0], b[1], b[2], b[3], page)) for b in raw_blocks if b[6] == 0 and b[4].strip()]
    from nexus_assets.lib.ingest.mupdf import pymupdf

    blocks = []
    for raw in page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]:
        if raw.get("type", 0) != 0:
            continue
        groups: dict[bool, list[tuple[str, tuple[float, ...]]]] = {False: [], True: []}
        for line in raw.get("lines", ()):
            text = "".join(span["text"] for span in line["spans"])
            if text.strip():
                groups[abs(line["dir"][1]) > ROTATED_SIN].append((text, line["bbox"]))
        for rotated, lines in groups.items():
            if not lines:
                continue
            x0 = min(b[0] for _, b in lines)
            y0 = min(b[1] for _, b in lines)
            x1 = max(b[2] for _, b in lines)
            y1 = max(b[3] for _, b in lines)
            blocks.append(_block("\n".join(t for t, _ in lines) + "\n", _box(x0, y0, x1, y1, page), rotated))
    return blocks


# --- finding boilerplate across a file -------------------------------------------------------------------

RULES = {
    "header_footer": "running headers/footers",
    "same_place": "text at the same place on many pages",
    "repeated_block": "repeated body blocks",
    "margin_strip": "rotated or side-margin text",
}


@dataclass
class BoilerplateReport:
    """What was removed from one file: per rule, how many blocks (or lines) and one example."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, rule: str, text: str) -> None:
        self.counts[rule] += 1
        self.examples.setdefault(rule, _SPACE_RE.sub(" ", text).replace(";", ",").strip()[:EXAMPLE_CHARS])

    def __bool__(self) -> bool:
        return bool(self.counts)

    def note(self) -> str:
        """One line for the file's notes, e.g. `boilerplate removed: 21 repeated body blocks (e.g. '…')`."""
        parts = [
            f"{self.counts[rule]} {RULES[rule]} (e.g. {self.examples[rule]!r})" for rule in RULES if self.counts[rule]
        ]
        return f"{NOTE_PREFIX} " + ", ".join(parts)


def signature(text: str) -> str:
    """Case, spacing, punctuation and numbers ignored: `Page 3 of 40` and `page 4 of 40` are the same."""
    return " ".join(_DIGITS_RE.sub("#", w) for w in _WORD_RE.findall(text.lower()))


def _exact(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.lower()))


def _shingles(words: list[str]) -> set[int]:
    if len(words) < 3:
        return {zlib.crc32(" ".join(words).encode())}
    return {zlib.crc32(" ".join(words[i : i + 3]).encode()) for i in range(len(words) - 2)}


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class _Clusters:
    """Union-find over block ids."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _near_duplicate_groups(items: list[tuple[int, str]]) -> dict[int, list[int]]:
    """Cluster blocks that are the same text up to a few words: root id -> member ids.

    Candidates share their first or last `ANCHOR_TOKENS` words (or their whole signature); within an
    anchor's bucket each block is compared with one representative per cluster, so a block repeated
    on hundreds of pages costs hundreds of comparisons, not tens of thousands.
    """
    clusters = _Clusters()
    words = {i: signature(text).split() for i, text in items}
    shingles = {i: _shingles(w) for i, w in words.items()}
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, w in words.items():
        buckets[("sig", " ".join(w))].append(i)
        buckets[("head", " ".join(w[:ANCHOR_TOKENS]))].append(i)
        buckets[("tail", " ".join(w[-ANCHOR_TOKENS:]))].append(i)
    for (kind, _), members in buckets.items():
        if len(members) < 2:
            continue
        if kind == "sig":
            for other in members[1:]:
                clusters.union(members[0], other)
            continue
        representatives: list[int] = []
        for i in members:
            near = (r for r in representatives if _jaccard(shingles[i], shingles[r]) >= NEAR_DUPLICATE_JACCARD)
            match = next(near, None)
            if match is None:
                representatives.append(i)
            else:
                clusters.union(match, i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, _ in items:
        groups[clusters.find(i)].append(i)
    return groups


def find_boilerplate(pages: Sequence[Sequence[Block]]) -> tuple[list[list[str | None]], BoilerplateReport]:
    """Decide, across one file, what each block keeps.

    Returns, per page and per block, the text to keep (`None`: the whole block is boilerplate; a
    shorter text: the lines a near-duplicate block has of its own) and the report of what went.
    """
    report = BoilerplateReport()
    keep: list[list[str | None]] = [[b.text for b in blocks] for blocks in pages]
    n_pages = len(pages)
    if n_pages < MIN_REPEAT_PAGES:
        return keep, report
    ids = [(p, i) for p, blocks in enumerate(pages) for i in range(len(blocks))]
    block = {(p, i): pages[p][i] for p, i in ids}

    def pages_of(members: Sequence[tuple[int, int]]) -> int:
        return len({p for p, _ in members})

    def drop(members: Sequence[tuple[int, int]], rule: str) -> None:
        for p, i in members:
            if keep[p][i] is not None:
                keep[p][i] = None
                report.add(rule, block[(p, i)].text)

    def apply_beside_content(changes: dict[tuple[int, int], str | None], rule: str) -> None:
        """Apply body-block `changes` (new text, None: drop) on every page they do not leave empty."""
        for p in sorted({p for p, _ in changes}):
            after = [changes.get((p, j), kept) for j, kept in enumerate(keep[p])]
            if not any(t is not None and _exact(t) for t in after):
                continue  # the repeated text is all the page has: it is the page's content
            for i in sorted(i for q, i in changes if q == p):
                keep[p][i] = changes[(p, i)]
                report.add(rule, block[(p, i)].text)

    # 1. Running headers and footers: short margin blocks repeating (numbers ignored) on half the pages.
    by_sig: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key in ids:
        b = block[key]
        if b.in_margin and len(b.text) <= MAX_MARGIN_CHARS:
            by_sig[signature(b.text)].append(key)
    threshold = max(MIN_REPEAT_PAGES, SAME_PLACE_SHARE * n_pages)
    for members in by_sig.values():
        if pages_of(members) >= threshold:
            drop(members, "header_footer")

    # 2. Rotated or side-margin text repeating (numbers ignored, or nearly the same) on a few pages.
    strips = [(n, key) for n, key in enumerate(ids) if (block[key].rotated or block[key].side) and keep[key[0]][key[1]]]
    for group in _near_duplicate_groups([(n, block[key].text) for n, key in strips]).values():
        keys = [ids[n] for n in group]
        if pages_of(keys) >= MIN_REPEAT_PAGES:
            drop(keys, "margin_strip")

    # 3. The same text (numbers included) at the same place on half the pages, wherever the place is.
    by_place: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for key in ids:
        b = block[key]
        if b.bbox is not None and keep[key[0]][key[1]] is not None:
            place = tuple(round(v / POSITION_GRID) for v in b.bbox)
            by_place[(place, _exact(b.text))].append(key)
    same_place: dict[tuple[int, int], str | None] = {}
    for members in by_place.values():
        if pages_of(members) >= threshold:
            same_place.update(dict.fromkeys(members))
    apply_beside_content(same_place, "same_place")

    # 4. Long body blocks repeated, exactly or nearly, on a few pages: the lines the copies share go,
    # unless that would empty the page (boilerplate sits beside a page's content, it is not all of it).
    changes: dict[tuple[int, int], str | None] = {}
    long_blocks = [
        (n, key)
        for n, key in enumerate(ids)
        if keep[key[0]][key[1]] is not None and len(_exact(block[key].text)) >= MIN_BODY_CHARS
    ]
    for group in _near_duplicate_groups([(n, block[key].text) for n, key in long_blocks]).values():
        keys = [ids[n] for n in group]
        if pages_of(keys) < max(MIN_REPEAT_PAGES, BODY_REPEAT_SHARE * n_pages):
            continue
        # Lines compared with their numbers: "task 3" inside a licence box is text of its own.
        line_pages: dict[str, set[int]] = defaultdict(set)
        for p, i in keys:
            for line in block[(p, i)].text.splitlines():
                line_pages[_exact(line)].add(p)
        for p, i in keys:
            lines = [line for line in block[(p, i)].text.splitlines() if _exact(line)]
            own = [line for line in lines if len(line_pages[_exact(line)]) < MIN_REPEAT_PAGES]
            if len(own) == len(lines):
                continue  # nothing this copy shares with the others on enough pages
            changes[(p, i)] = "\n".join(own) + "\n" if own else None
    apply_beside_content(changes, "repeated_block")
    return keep, report
