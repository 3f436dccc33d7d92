"""Text that came from an upload (file and folder names, page text, reasons quoting them), made safe to show.

One path for every place such text is shown: `shown` for logs and the terminal (control, bidirectional
and invisible characters become visible `\\xNN`/`\\uNNNN` escapes, so a name cannot rewrite a log line,
move the cursor or hide an extension), `markdown` for the Dagster UI's Markdown metadata (on top of
`shown`, every character that could start markup is backslash-escaped (see `_MARKDOWN`), so no tag, image,
link, autolink, emphasis or table cell break written by an uploader survives as markup: it renders as the
literal text, and ordinary names and sentences stay as they are in the Markdown source).

Dagster's UI renders Markdown metadata with react-markdown with raw HTML allowed, so escaping `|` and newlines
(what table cells needed) is not enough: `<img src=x onerror=...>` in a file name would be live markup.
"""

from __future__ import annotations

import re
import unicodedata

# Candidates: anything outside printable ASCII. Shown escaped among them: controls (C0, C1, DEL), format
# characters (bidirectional overrides and isolates, zero-width characters, the byte-order mark, tags), line and
# paragraph separators, private-use and unassigned code points, and lone surrogates (a file name of invalid
# UTF-8 decoded with surrogateescape, which would also make writing the log line fail).
_CANDIDATES = re.compile(r"[^\x20-\x7e]")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})
# What can start markup in CommonMark or GFM, backslash-escaped (CommonMark allows that escape for any ASCII
# punctuation): always the characters of tags, entities, links, images, code, emphasis, strikethrough, tables,
# headings and autolinks (`:` of `https:`, `@` of e-mail); `_` unless between two letters or digits (never
# emphasis there, so `buku_siswa_10.pdf` stays as it is); `.` after `www` or leading digits (`www.` autolinks,
# `1.` lists); `-` and `+` leading (lists). The rest of ASCII punctuation is inert and stays readable.
_MARKDOWN = re.compile(
    r"[\\`*\[\]()!<>&|#~:@]"
    r"|(?<![^\W_])_|_(?![^\W_])"
    r"|www\.|^[0-9]+\."
    r"|^[-+]",
    re.IGNORECASE,
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    if unicodedata.category(char) not in _HIDDEN_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: object, limit: int | None = None) -> str:
    """`text` with every control or invisible character shown as an escape; at most `limit` characters
    (an ellipsis marks the cut)."""
    value = _CANDIDATES.sub(_visible, str(text))
    if limit is not None and len(value) > limit:
        return value[: max(0, limit - 1)] + "…"
    return value


def quoted(value: object, limit: int = 120) -> str:
    """`repr(value)` (which escapes what is not printable), cut to about `limit` characters with the full length
    said: a 10,000-character name must not make every message that names it 10,000 characters long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}…' ({len(str(value)):,} characters)"


def markdown(text: object, limit: int | None = None) -> str:
    """`text` as literal Markdown: `shown`, then every character that could start markup backslash-escaped."""
    return _MARKDOWN.sub(_escape, shown(text, limit))


def _escape(match: re.Match[str]) -> str:
    found = match.group()  # one character, or `www.` / `12.` whose dot is escaped
    return found[:-1] + "\\" + found[-1]


def terminal(text: object) -> str:
    """`text` for a terminal line by line: each line `shown` (its line breaks kept, nothing else hidden, so page
    text in a search snippet or a name in a table can neither move the cursor nor reorder the line)."""
    return "\n".join(shown(line) for line in str(text).split("\n"))


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED or unicodedata.category(char) not in _HIDDEN_CATEGORIES:  # raw \n \r \t: layout whitespace
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: JSON spells it as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(document: str) -> str:
    """A JSON document (from `json.dumps(..., ensure_ascii=False)`) with every hidden character written as its
    `\\uXXXX` escape: the same JSON value, decoded exactly as before, but nothing invisible reaches a terminal.
    Safe on the whole document: json.dumps escapes controls inside strings, so a raw line break or tab is the
    document's own layout; everything else outside strings is printable ASCII, which is left alone."""
    return _CANDIDATES.sub(_json_escape, document)


def one_line(text: object) -> str:
    """Runs of whitespace (page text's line breaks) as single spaces: for previews of page text."""
    return " ".join(str(text).split())
