"""PDFs written byte by byte, for what PyMuPDF will not write: page-tree loops, deep trees, deflate bombs."""

from __future__ import annotations

import zlib

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF of numbered object bodies (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    """A deflate-compressed stream object body."""
    packed = zlib.compress(data, 9)
    return b"<< /Length %d /Filter /FlateDecode%s >>\nstream\n" % (len(packed), extra) + packed + b"\nendstream"


def page(parent: int, contents: int, resources: bytes = b"<< /Font << /F1 3 0 R >> >>") -> bytes:
    return b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources %s >>" % (
        parent,
        contents,
        resources,
    )


def overlaid_text(lines: int, line: bytes = b"A" * 100) -> bytes:
    """One page whose content stream draws `lines` lines of 1-point text over each other (700 positions):
    a few hundred times smaller compressed than the text it yields."""
    body = (
        b"BT /F1 1 Tf " + b"".join(b"1 0 0 1 50 %d Tm (%s) Tj\n" % (50 + i % 700, line) for i in range(lines)) + b"ET"
    )
    return raw_pdf([CATALOG, b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>", FONT, page(2, 5), stream(body)])


def deep_tree(depth: int, text: bytes = b"deep page") -> bytes:
    """One page under `depth` nested /Pages nodes."""
    objects = [CATALOG]
    for level in range(depth):  # node level+2 has kid level+3
        parent = b" /Parent %d 0 R" % (level + 1) if level else b""
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (level + 3, parent))
    leaf = len(objects) + 1
    objects.append(page(leaf - 1, leaf + 2, b"<< /Font << /F1 %d 0 R >> >>" % (leaf + 1)))
    objects.append(FONT)
    objects.append(stream(b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"))
    return raw_pdf(objects)


def looping_tree() -> bytes:
    """A page tree whose node lists itself and its parent among its kids."""
    return raw_pdf(
        [
            CATALOG,
            b"<< /Type /Pages /Kids [2 0 R 4 0 R 5 0 R] /Count 3 >>",
            FONT,
            page(2, 6),
            b"<< /Type /Pages /Parent 2 0 R /Kids [5 0 R 2 0 R] /Count 2 >>",
            stream(b"BT /F1 12 Tf 72 720 Td (loop) Tj ET"),
        ]
    )


def image_bomb(width: int, height: int) -> bytes:
    """A page with a `width` x `height` RGB image of zeros, deflated (30,000 square: 2.7 GB in 2.6 MB)."""
    packer = zlib.compressobj(9)
    row = b"\0" * (width * 3)
    data = b"".join([*(packer.compress(row) for _ in range(height)), packer.flush()])
    image = (
        (
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 "
            b"/Filter /FlateDecode /Length %d >>\nstream\n" % (width, height, len(data))
        )
        + data
        + b"\nendstream"
    )
    content = stream(b"BT /F1 12 Tf 72 720 Td (a page with a big image) Tj ET q 500 0 0 500 50 50 cm /Im1 Do Q")
    resources = b"<< /Font << /F1 3 0 R >> /XObject << /Im1 6 0 R >> >>"
    return raw_pdf([CATALOG, b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>", FONT, page(2, 5, resources), content, image])
