"""The container: round trips, and every damaged stream raises BitstreamError (fuzzed)."""

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdic_lab.coding import BitstreamError, model_fingerprint, pack, read_bitstream, unpack, write_bitstream
from mdic_lab.coding.container import FORMAT_VERSION, MAGIC, _header, header_size, model_tag

MODEL = "ndic@0123456789abcdef"
SHAPES = {"image": (128, 256), "y": (1, 192, 8, 16), "z": (1, 128, 2, 4)}
PAYLOADS = [b"\x01\x02\x03\x04" * 50, b"", b"hyper"]


def _stream():
    return pack(MODEL, SHAPES, PAYLOADS)


def test_round_trip_fields():
    c = unpack(_stream(), expected_model_id=MODEL)
    assert c.model_id == MODEL and c.shapes == SHAPES and c.payloads == PAYLOADS
    assert c.version == FORMAT_VERSION
    lengths = [len(p) for p in PAYLOADS]
    assert len(_stream()) == header_size(MODEL, SHAPES, lengths) + sum(lengths) + 4


def test_pinned_bytes():
    # the format is fixed byte by byte: a change to it must bump FORMAT_VERSION
    data = pack("toy@0", {"a": (2, 300)}, [b"xy"])
    tag = bytes.fromhex("c7af955384315930")  # sha256(b"toy@0")[:8], pinned
    assert model_tag("toy@0") == tag
    assert data == (MAGIC + struct.pack("<H", 2) + tag + struct.pack("<BBcB", 1, 1, b"a", 2)
                    + bytes([2, 0xAC, 0x02])  # dims 2 and 300 as LEB128 varints
                    + bytes([1, 2]) + b"xy" + struct.pack("<I", zlib.crc32(data[:-4])))


def test_header_is_compact():
    # the header is part of every coded bpp (at 128x256 a byte is 0.00024 bpp): the
    # shapes and payloads of an NDIC hyperprior stream fit in under 40 bytes (v1: 74)
    assert header_size(MODEL, {"x": (128, 256), "v": (8, 16), "z": (2, 4)}, [300, 40]) < 40


def test_wrong_model_is_named():
    with pytest.raises(BitstreamError, match="wrong model.*tag.*other@1"):
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
    tag = model_tag("m")
    body = MAGIC + struct.pack("<H", FORMAT_VERSION) + tag + bytes([0, 1, 0xFF, 0xFF, 0xFF, 0x7F])
    with pytest.raises(BitstreamError, match="truncated"):
        unpack(body + struct.pack("<I", zlib.crc32(body)))
    body = _header(tag, {"x": (65536,) * 4}, [])
    with pytest.raises(BitstreamError, match="exceeds limits"):
        unpack(body + struct.pack("<I", zlib.crc32(body)))
    body = MAGIC + struct.pack("<H", FORMAT_VERSION) + tag + bytes([0, 0x80, 0x80, 0x80, 0x80, 0x80, 0])
    with pytest.raises(BitstreamError, match="varint"):
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
    assert _header(c.model_tag, c.shapes, [len(p) for p in c.payloads]) + b"".join(c.payloads) == body


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


def test_fingerprint_of_torch_weights_any_dtype():
    """Torch tensors hash as their numpy twins; bfloat16 (which numpy lacks) by its bytes and its name."""
    import torch

    w = torch.tensor([0.5, 1.0, -2.0])
    assert model_fingerprint("m", None, {"w": w}) == model_fingerprint("m", None, {"w": w.numpy()})
    bf = model_fingerprint("m", None, {"w": w.to(torch.bfloat16)})
    assert bf != model_fingerprint("m", None, {"w": w}) and bf != model_fingerprint("m", None, {"w": w.half()})
    assert bf != model_fingerprint("m", None, {"w": (w + 1).to(torch.bfloat16)})
    assert bf == model_fingerprint("m", None, {"w": w.clone().to(torch.bfloat16)})
