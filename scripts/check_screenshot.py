#!/usr/bin/env python3
"""Fails when a screenshot is blank: a failed or empty render is (almost) one colour.

  scripts/check_screenshot.py SHOT.png

Decodes the PNG (8-bit RGB or RGBA, the format Chromium writes) with zlib alone, samples every
fourth pixel of every fourth row and measures how much of it is not the background (the most
common colour). Prints one line; exits 1 when under 1% is drawn or fewer than 4 colours appear, or
when the file is not such a PNG. scripts/check-report-html.sh runs it on Chromium's screenshot.
"""

import struct
import sys
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLE_STEP = 4
MIN_DRAWN = 0.01
MIN_COLOURS = 4


class NotAScreenshot(Exception):
    """The file is not an 8-bit RGB or RGBA PNG."""


def paeth(left, up, upleft):
    p = left + up - upleft
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
    return left if pa <= pb and pa <= pc else up if pb <= pc else upleft


def decode_png(data):
    """(width, height, channels, rows): each row the unfiltered bytes of one line of pixels."""
    if data[:8] != PNG_SIGNATURE:
        raise NotAScreenshot("not a PNG")
    pos, idat, header = 8, b"", None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    if header is None:
        raise NotAScreenshot("no IHDR chunk")
    width, height, depth, colour = header
    if depth != 8 or colour not in (2, 6):
        raise NotAScreenshot(f"unexpected PNG format depth={depth} colour={colour}")
    channels = 3 if colour == 2 else 4
    try:
        raw = zlib.decompress(idat)
    except zlib.error as error:
        raise NotAScreenshot(f"image data does not decompress: {error}") from error
    stride = width * channels
    if len(raw) < height * (1 + stride):
        raise NotAScreenshot("image data shorter than its header says")
    rows, previous, offset = [], bytearray(stride), 0
    for _ in range(height):
        kind = raw[offset]
        line = bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            upleft = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                line[i] = (line[i] + paeth(left, up, upleft)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def colour_counts(rows, channels):
    """How often each RGB colour appears among the sampled pixels."""
    counts = {}
    for row in rows[::SAMPLE_STEP]:
        for i in range(0, len(row), channels * SAMPLE_STEP):
            pixel = row[i:i + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    return counts


def drawn_fraction(counts):
    """The share of sampled pixels that are not the background (the most common colour)."""
    total = sum(counts.values())
    return 1 - max(counts.values()) / total if total else 0.0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: check_screenshot.py SHOT.png", file=sys.stderr)
        return 2
    path = argv[0]
    try:
        with open(path, "rb") as f:
            width, height, channels, rows = decode_png(f.read())
    except (OSError, NotAScreenshot) as error:
        print(f"FAIL {path}: {error}")
        return 1
    counts = colour_counts(rows, channels)
    drawn = drawn_fraction(counts)
    print(f"     screenshot {path}: {width}x{height}, {drawn:.1%} of it drawn, {len(counts)} colours")
    if drawn < MIN_DRAWN or len(counts) < MIN_COLOURS:
        print("FAIL the screenshot is blank")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
