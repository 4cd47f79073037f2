"""The journal's doubles, written without the GIL (runner/core/shortest_double.h).

The journal's readers take a short row's duration_ms and offset_ms back with orjson.loads,
and resume puts them in the LAST file: the text must read back as exactly the double
written, bit for bit, whatever the double. orjson's own text is what it replaces, so its
layout is kept and its digits are the same for nearly every double (Grisu2 gives a digit
more, or a last digit not the nearest, for about one in a thousand: still the same double).
"""
from __future__ import annotations

import math
import os
import random
import struct

import orjson
from hypothesis import given, settings, strategies as st

from runner import librunner
from test_inline_results import alt_of, run_inline


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def of_bits(pattern: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", pattern))[0]


def assert_reads_back(value: float) -> bytes:
    text = librunner.double_text(value)
    if math.isnan(value) or math.isinf(value):
        assert text == b"null"          # as orjson writes them
        return text
    assert bits(orjson.loads(text)) == bits(value), (value, text)
    assert bits(float(text)) == bits(value), (value, text)
    assert len(text) <= 24
    return text


@given(st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=3000)
def test_any_double_reads_back_as_itself(value):
    assert_reads_back(value)


@given(st.integers(min_value=0, max_value=2 ** 64 - 1))
@settings(max_examples=3000)
def test_any_bit_pattern_reads_back_as_itself(pattern):
    assert_reads_back(of_bits(pattern))


def test_edges_and_a_large_sample_read_back_and_mostly_as_orjson_writes_them():
    rng = random.Random(20261206)
    values = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
              1.7976931348623157e308, -1.7976931348623157e308, 0.1, 0.3, 1 / 3, 1e-5, 1e-6, 1e15, 1e16,
              9007199254740992.0, 9007199254740993.0, 123456789012345678.0, 1e21, 1e22, 1e23]
    values += [2.0 ** e for e in range(-1074, 1024)]
    values += [float(f"1e{e}") for e in range(-323, 309)]
    values += [of_bits(rng.getrandbits(64)) for _ in range(100_000)]
    # What the rows hold: durations and offsets in milliseconds.
    durations = [rng.random() * 10 ** rng.randint(-6, 7) for _ in range(50_000)]
    for value in values + durations:
        assert_reads_back(value)
    # orjson's layout (decimal from 1e-5 to below 1e16, "1e-6", "1.5e+16") and, nearly
    # always, its digits. The exponent's form ("e16" or "e+16") differs between orjson
    # versions, so the comparison is of the decimal range, where every row's doubles are.
    decimal = [v for v in durations + values if v == v and 1e-5 <= abs(v) < 1e16]
    same = sum(librunner.double_text(v) == orjson.dumps(v) for v in decimal)
    assert same >= 0.995 * len(decimal), (same, len(decimal))
    assert librunner.double_text(1e-6) == b"1e-6" and librunner.double_text(1.5e-7) == b"1.5e-7"
    assert librunner.double_text(1e16) == b"1e+16" and librunner.double_text(-0.0) == b"-0.0"
    assert librunner.double_text(12.5) == b"12.5" and librunner.double_text(100.0) == b"100.0"


def test_write_synced_makes_the_rows_doubles_and_writes_them_in_place(tmp_path):
    results = list(run_inline(alt_of([{"n": n} for n in range(12)]), clock_origin=1.0).values())
    text = librunner.journal_text(results)
    whole = librunner.journal_lines(results)
    assert bytes(text) == whole and whole.count(b"\n") == 1
    assert orjson.loads(whole)["rows"][5][4] == results[5].to_dict()["duration_ms"]
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        librunner.write_synced(fd, [b"[", text, b"]", librunner.journal_text([]), text])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"[" + whole + b"]" + whole
