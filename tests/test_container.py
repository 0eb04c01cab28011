"""The container: round trips, and every damaged stream raises BitstreamError (fuzzed)."""

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdic_lab.coding import BitstreamError, model_fingerprint, pack, read_bitstream, unpack, write_bitstream
from mdic_lab.coding.container import FORMAT_VERSION, MAGIC, header_size

MODEL = "ndic@0123456789abcdef"
SHAPES = {"image": (128, 256), "y": (1, 192, 8, 16), "z": (1, 128, 2, 4)}
PAYLOADS = [b"\x01\x02\x03\x04" * 50, b"", b"hyper"]


def _stream():
    return pack(MODEL, SHAPES, PAYLOADS)


def test_round_trip_fields():
    c = unpack(_stream(), expected_model_id=MODEL)
    assert c.model_id == MODEL and c.shapes == SHAPES and c.payloads == PAYLOADS
    assert c.version == FORMAT_VERSION
    assert len(_stream()) == header_size(MODEL, SHAPES, 3) + sum(map(len, PAYLOADS)) + 4


def test_pinned_bytes():
    # the format is fixed byte by byte: a change to it must bump FORMAT_VERSION
    data = pack("toy@0", {"a": (2, 3)}, [b"xy"])
    assert data[:4] == MAGIC
    assert data == (MAGIC + struct.pack("<HH", 1, 5) + b"toy@0" + struct.pack("<HBcB2I", 1, 1, b"a", 2, 2, 3)
                    + struct.pack("<HI", 1, 2) + b"xy" + struct.pack("<I", zlib.crc32(data[:-4])))


def test_wrong_model_is_named():
    with pytest.raises(BitstreamError, match="wrong model.*ndic@0123.*other@1"):
        unpack(_stream(), expected_model_id="other@1")


def test_wrong_version_is_named():
    data = bytearray(_stream())
    data[4:6] = struct.pack("<H", 7)
    with pytest.raises(BitstreamError, match="version 7"):
        unpack(bytes(data))


def test_bad_magic():
    with pytest.raises(BitstreamError, match="magic"):
        unpack(b"JPEG" + _stream()[4:])


def test_truncation_is_named():
    data = _stream()
    for cut in (0, 3, 9, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(BitstreamError, match="truncated|CRC"):
            unpack(data[:cut])


def test_single_bit_flips_all_detected():
    data = _stream()
    for i in range(len(data)):
        for bit in (0, 7):
            d = bytearray(data)
            d[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                unpack(bytes(d), expected_model_id=MODEL)


def test_huge_length_fields_fail_fast():
    # a valid CRC over a header that claims gigabytes: must be refused, not allocated
    body = (MAGIC + struct.pack("<HH", FORMAT_VERSION, 1) + b"m" + struct.pack("<H", 0)
            + struct.pack("<HI", 1, 0xFFFFFFFF))
    with pytest.raises(BitstreamError, match="truncated"):
        unpack(body + struct.pack("<I", zlib.crc32(body)))
    body = (MAGIC + struct.pack("<HH", FORMAT_VERSION, 1) + b"m" + struct.pack("<H", 1)
            + struct.pack("<B", 1) + b"x" + struct.pack("<B4I", 4, 65536, 65536, 65536, 65536) + struct.pack("<H", 0))
    with pytest.raises(BitstreamError, match="exceeds limits"):
        unpack(body + struct.pack("<I", zlib.crc32(body)))


def test_pack_validates_inputs():
    with pytest.raises(ValueError, match="model_id"):
        pack("", {}, [])
    with pytest.raises(ValueError, match="shape 'x'"):
        pack("m", {"x": (-1, 2)}, [])
    with pytest.raises(ValueError, match="elements"):
        pack("m", {"x": (2**15, 2**15, 2)}, [])
    with pytest.raises(ValueError, match=r"payloads\[0\]"):
        pack("m", {}, ["text"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_flips_and_truncations_raise_bitstream_error(data):
    stream = bytearray(_stream())
    n_flips = data.draw(st.integers(1, 8))
    for _ in range(n_flips):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(stream)))
    damaged = bytes(stream[:cut])
    if damaged == _stream():
        return  # the draws happened to restore the original bytes
    with pytest.raises(BitstreamError):
        unpack(damaged, expected_model_id=MODEL)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_garbage_raises_bitstream_error(garbage):
    with pytest.raises(BitstreamError):
        unpack(garbage)
    with pytest.raises(BitstreamError):
        unpack(MAGIC + struct.pack("<H", FORMAT_VERSION) + garbage)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_garbage_with_valid_crc_never_crashes(garbage):
    # a forged body with a correct CRC: parse errors must still be BitstreamError
    body = MAGIC + struct.pack("<H", FORMAT_VERSION) + garbage
    try:
        c = unpack(body + struct.pack("<I", zlib.crc32(body)))
    except BitstreamError:
        return
    assert pack(c.model_id, c.shapes, c.payloads) == body + struct.pack("<I", zlib.crc32(body))


def test_write_read_atomic(tmp_path):
    p = tmp_path / "sub" / "x.mdic"
    write_bitstream(p, _stream())
    assert read_bitstream(p) == _stream()
    assert unpack(read_bitstream(p), expected_model_id=MODEL).payloads == PAYLOADS
    assert [f.name for f in p.parent.iterdir()] == ["x.mdic"]  # no temp files left
    with pytest.raises(FileNotFoundError, match="not found"):
        read_bitstream(tmp_path / "missing.mdic")


def test_fingerprint_depends_on_weights():
    import numpy as np

    a = model_fingerprint("m", {"k": 1}, {"w": np.zeros(3, np.float32)})
    b = model_fingerprint("m", {"k": 1}, {"w": np.array([0, 0, 1e-7], np.float32)})
    assert a != b and a.startswith("m@") and len(a) == 2 + 16
    with pytest.raises(ValueError, match="model name"):
        model_fingerprint("a@b")
