"""Tests of check_screenshot.py on PNGs written here: every row filter decoded, a drawn page passes,
a blank or nearly blank one and files that are not 8-bit RGB(A) PNGs fail."""

import os
import struct
import subprocess
import sys
import zlib

import pytest

import check_screenshot as cs

HERE = os.path.dirname(os.path.abspath(__file__))


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def filtered(kind, line, previous, channels):
    """One row filtered the way a PNG encoder does, so that decoding must undo it."""
    out = bytearray()
    for i, value in enumerate(line):
        left = line[i - channels] if i >= channels else 0
        up = previous[i]
        upleft = previous[i - channels] if i >= channels else 0
        predictor = [0, left, up, (left + up) // 2, cs.paeth(left, up, upleft)][kind]
        out.append((value - predictor) & 255)
    return bytes([kind]) + bytes(out)


def png(rows, width, channels=3, depth=8):
    """A PNG of the given unfiltered rows, row n written with filter n % 5 (all five in turn)."""
    colour = 2 if channels == 3 else 6
    raw, previous = b"", bytes(len(rows[0]))
    for n, line in enumerate(rows):
        raw += filtered(n % 5, line, previous, channels)
        previous = line
    header = struct.pack(">IIBBBBB", width, len(rows), depth, colour, 0, 0, 0)
    return (cs.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def picture(width, height, colour_at, channels=3):
    """Rows of pixels colour_at(x, y) → (r, g, b); RGBA pictures are opaque."""
    alpha = (255,) if channels == 4 else ()
    return [bytes(v for x in range(width) for v in colour_at(x, y) + alpha) for y in range(height)]


def white(_x, _y):
    return (255, 255, 255)


def page_with_plots(x, y):
    """A white page with four coloured bars, like plots on a report."""
    if 8 <= y < 56 and x % 16 < 8:
        return [(200, 30, 30), (30, 160, 30), (30, 30, 200), (90, 90, 90)][(x // 16) % 4]
    return white(x, y)


def write_png(tmp_path, data):
    path = tmp_path / "shot.png"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("channels", [3, 4])
def test_every_row_filter_is_undone(channels):
    rows = picture(13, 10, lambda x, y: ((x * 37 + y) % 256, (y * 91) % 256, (x * y * 7) % 256),
                   channels)
    width, height, decoded_channels, decoded = cs.decode_png(png(rows, 13, channels))
    assert (width, height, decoded_channels) == (13, 10, channels)
    assert decoded == rows


def test_a_page_with_plots_passes(tmp_path, capsys):
    shot = write_png(tmp_path, png(picture(64, 64, page_with_plots), 64))
    assert cs.main([shot]) == 0
    out = capsys.readouterr().out
    assert f"screenshot {shot}: 64x64," in out
    assert "FAIL" not in out


def test_a_blank_page_fails(tmp_path, capsys):
    shot = write_png(tmp_path, png(picture(64, 64, white), 64))
    assert cs.main([shot]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"     screenshot {shot}: 64x64, 0.0% of it drawn, 1 colours",
        "FAIL the screenshot is blank"]


def test_a_page_with_a_speck_of_colour_is_still_blank(tmp_path):
    def speck(x, y):
        return (0, 0, 0) if (x, y) == (0, 0) else white(x, y)
    counts = cs.colour_counts(picture(64, 64, speck), 3)
    assert 0 < cs.drawn_fraction(counts) < cs.MIN_DRAWN
    assert cs.main([write_png(tmp_path, png(picture(64, 64, speck), 64))]) == 1


def test_a_file_that_is_not_a_png_fails(tmp_path, capsys):
    shot = write_png(tmp_path, b"<html>not an image</html>")
    assert cs.main([shot]) == 1
    assert capsys.readouterr().out == f"FAIL {shot}: not a PNG\n"


def test_a_16_bit_png_is_refused(tmp_path, capsys):
    shot = write_png(tmp_path, png([bytes(6 * 2)], 2, depth=16))
    assert cs.main([shot]) == 1
    assert "unexpected PNG format depth=16 colour=2" in capsys.readouterr().out


def test_the_command_exits_1_on_a_blank_screenshot(tmp_path):
    shot = write_png(tmp_path, png(picture(32, 32, white, channels=4), 32, channels=4))
    result = subprocess.run([sys.executable, os.path.join(HERE, "check_screenshot.py"), shot],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stdout.endswith("FAIL the screenshot is blank\n")
