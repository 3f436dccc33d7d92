"""Text that came from an upload (file and folder names, page text, reasons quoting them), made safe to show.

One path for every place such text is shown: `shown` for logs and the terminal (control, bidirectional
and invisible characters become visible `\\xNN`/`\\uNNNN` escapes, so a name cannot rewrite a log line,
move the cursor or hide an extension), `markdown` for the Dagster UI's Markdown metadata (on top of
`shown`, every ASCII punctuation character is backslash-escaped: CommonMark allows that escape for all of
them, so no tag, image, link, autolink, emphasis or table cell break written by an uploader survives as
markup; it renders as the literal text).

Dagster's UI renders Markdown metadata with react-markdown with raw HTML allowed, so escaping `|` and newlines
(what table cells needed) is not enough: `<img src=x onerror=...>` in a file name would be live markup.
"""

from __future__ import annotations

import re
import string

# C0 and C1 controls, DEL, bidirectional overrides and isolates, zero-width and line/paragraph separators,
# the byte-order mark: characters that change how the text around them is displayed, or are invisible.
_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_MARKDOWN = str.maketrans({c: "\\" + c for c in string.punctuation})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object, limit: int | None = None) -> str:
    """`text` with every control or invisible character shown as an escape; at most `limit` characters
    (an ellipsis marks the cut)."""
    value = _HIDDEN.sub(_visible, str(text))
    if limit is not None and len(value) > limit:
        return value[: max(0, limit - 1)] + "…"
    return value


def markdown(text: object, limit: int | None = None) -> str:
    """`text` as literal Markdown: `shown`, then every ASCII punctuation character backslash-escaped."""
    return shown(text, limit).translate(_MARKDOWN)


def one_line(text: object) -> str:
    """Runs of whitespace (page text's line breaks) as single spaces: for previews of page text."""
    return " ".join(str(text).split())
