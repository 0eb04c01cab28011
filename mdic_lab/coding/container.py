"""The versioned bitstream container: everything the encoder sends, in one checked blob.

Layout (format version 2; fixed-size integers little-endian, ``varint`` = unsigned LEB128)::

    magic        4 bytes   b"MDIC"
    version      u16       FORMAT_VERSION
    model tag    8 bytes   sha256(model_id)[:8], e.g. of "NDIC@3fa2c1d09b7e4a55"
    n_shapes     u8
      name       u8 length + UTF-8
      ndim       u8
      dims       ndim × varint
    n_payloads   varint
      length     n_payloads × varint
    payloads     concatenated bytes
    crc32        u32       zlib.crc32 of every byte above

At the extremely low rates this project studies a header is not free (at 128×256 every
byte is 0.00024 bpp), so the header is compact: the model identity travels as an 8-byte
tag of the full id (name + hash of config and weights, :func:`model_fingerprint`) and
sizes as varints; a typical NDIC or MDIC stream carries 25–35 header bytes. The tag still
makes a stream decoded by the wrong model fail loudly instead of producing a silently
wrong image. Every byte the encoder sends counts in the bpp
(:func:`mdic_lab.coding.bpp.bpp_from_bytes`), the header and CRC included;
:func:`header_size` reports the fixed part separately.

Decoding a truncated, corrupted, wrong-version or wrong-model stream raises
:class:`BitstreamError` naming the problem; size fields are bounded (:data:`MAX_DIM`,
:data:`MAX_ELEMENTS`, :data:`MAX_PAYLOADS`, lengths checked against the bytes present)
so a damaged length never triggers a huge allocation.

>>> data = pack("toy@0", {"image": (128, 256)}, [b"abcd"])
>>> c = unpack(data, expected_model_id="toy@0")
>>> c.model_id, c.shapes, c.payloads, c.version
('toy@0', {'image': (128, 256)}, [b'abcd'], 2)
>>> len(data) == header_size("toy@0", {"image": (128, 256)}, 1) + len(b"abcd") + 4  # + CRC
True
>>> unpack(data).model_id is None  # without an expected id only the tag is known
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from mdic_lab.atomic import atomic_write_bytes

from .errors import BitstreamError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_PAYLOADS",
    "MAX_STREAM_BYTES",
    "MAX_IMAGE_PIXELS",
    "Container",
    "BitstreamError",
    "pack",
    "unpack",
    "header_size",
    "model_fingerprint",
    "model_tag",
    "MODEL_TAG_BYTES",
    "write_bitstream",
    "read_bitstream",
    "declared_image_size",
    "require_shape",
]

MAGIC = b"MDIC"
FORMAT_VERSION = 2
#: Bytes of the model tag (a truncated SHA-256 of the model id).
MODEL_TAG_BYTES = 8
#: Largest single dimension a shape may declare.
MAX_DIM = 1 << 24
#: Largest number of elements (product of dims) a shape may declare.
MAX_ELEMENTS = 1 << 28
#: Largest number of payload sections.
MAX_PAYLOADS = 4096
#: Largest number of shapes.
MAX_SHAPES = 255
#: Largest whole stream accepted (1 GiB).
MAX_STREAM_BYTES = 1 << 30
#: Largest image (H·W pixels) a codec reconstructs when the size comes from the stream alone
#: (about 5800×5800; the largest images of the project, Cityscapes, have 2**21): a damaged or
#: forged size field is refused before the synthesis transform allocates its activations.
MAX_IMAGE_PIXELS = 1 << 25
_MAX_MODEL_ID = 1024


@dataclass(frozen=True)
class Container:
    """A parsed bitstream: who wrote it, the shapes the decoder needs, the payloads."""

    model_tag: bytes  # sha256(model_id)[:MODEL_TAG_BYTES]
    shapes: dict = field(default_factory=dict)  # name -> tuple of ints
    payloads: list = field(default_factory=list)  # list of bytes
    version: int = FORMAT_VERSION
    model_id: str | None = None  # the full id, known once checked against an expected id


# --------------------------------------------------------------------------- model identity
def model_fingerprint(name: str, config=None, state_dict=None, digits: int = 16) -> str:
    """``"name@<sha256 prefix>"`` over the JSON config and the weights (names, dtypes, shapes, bytes).

    ``config`` is any JSON-serialisable object (a dataclass: pass ``dataclasses.asdict``);
    ``state_dict`` maps names to tensors/arrays (torch or numpy).

    >>> a = model_fingerprint("toy", {"n": 1})
    >>> a == model_fingerprint("toy", {"n": 1}), a == model_fingerprint("toy", {"n": 2})
    (True, False)
    """
    if not isinstance(name, str) or not name or "@" in name:
        raise ValueError(f"model name must be a non-empty str without '@', got {name!r}")
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    if state_dict is not None:
        import numpy as np

        for key in sorted(state_dict):
            t = state_dict[key]
            if hasattr(t, "detach"):
                t = t.detach().cpu().contiguous()
                if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16: its bytes, named as such
                    import torch

                    h.update(f"{key}|bfloat16|{tuple(t.shape)}".encode())
                    h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
                    continue
                t = t.numpy()
            a = np.ascontiguousarray(t)
            h.update(f"{key}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.tobytes())
    return f"{name}@{h.hexdigest()[:digits]}"


# --------------------------------------------------------------------------- pack
def _check_shapes(shapes) -> dict:
    if not isinstance(shapes, dict):
        raise ValueError(f"shapes must be a dict name -> tuple of ints, got {type(shapes).__name__}")
    if len(shapes) > MAX_SHAPES:
        raise ValueError(f"at most {MAX_SHAPES} shapes, got {len(shapes)}")
    out = {}
    for name, shape in shapes.items():
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 255:
            raise ValueError(f"shape name must be a str of 1..255 UTF-8 bytes, got {name!r}")
        try:
            dims = tuple(int(d) for d in shape)
        except TypeError:
            raise ValueError(f"shape {name!r} must be a tuple of ints, got {shape!r}") from None
        if len(dims) > 255 or any(not 0 <= d <= MAX_DIM for d in dims):
            raise ValueError(f"shape {name!r} = {dims}: each dim must be in [0, {MAX_DIM}], at most 255 dims")
        if _prod(dims) > MAX_ELEMENTS:
            raise ValueError(f"shape {name!r} = {dims} has more than {MAX_ELEMENTS} elements")
        out[name] = dims
    return out


def _prod(dims) -> int:
    p = 1
    for d in dims:
        p *= d
    return p


def model_tag(model_id: str) -> bytes:
    """The 8-byte tag that identifies ``model_id`` in a stream: ``sha256(model_id)[:8]``."""
    return hashlib.sha256(model_id.encode()).digest()[:MODEL_TAG_BYTES]


def _varint(n: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, high bit set on every byte but the last."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _header(tag: bytes, shapes: dict, payload_lengths) -> bytes:
    parts = [MAGIC, struct.pack("<H", FORMAT_VERSION), tag, struct.pack("<B", len(shapes))]
    for name, dims in shapes.items():
        nb = name.encode()
        parts += [struct.pack("<B", len(nb)), nb, struct.pack("<B", len(dims))]
        parts += [_varint(d) for d in dims]
    parts.append(_varint(len(payload_lengths)))
    parts += [_varint(n) for n in payload_lengths]
    return b"".join(parts)


def pack(model_id: str, shapes: dict, payloads: list) -> bytes:
    """Serialise a stream: header (magic, version, model id, shapes, payload lengths), payloads, CRC32.

    Parameters
    ----------
    model_id : str
        Identity of the encoding model, e.g. from :func:`model_fingerprint`.
    shapes : dict[str, tuple[int, ...]]
        Everything the decoder must know about sizes (image H, W, latent shapes, ...).
    payloads : list[bytes]
        The coded sections, in the order the decoder reads them.

    Returns
    -------
    bytes
        The whole stream; ``8 * len(stream) / (H * W)`` is the coded bpp.
    """
    if not isinstance(model_id, str) or not 0 < len(model_id.encode()) <= _MAX_MODEL_ID:
        raise ValueError(f"model_id must be a non-empty str of at most {_MAX_MODEL_ID} UTF-8 bytes, got {model_id!r}")
    shapes = _check_shapes(shapes)
    if not isinstance(payloads, (list, tuple)) or len(payloads) > MAX_PAYLOADS:
        raise ValueError(f"payloads must be a list of at most {MAX_PAYLOADS} bytes objects")
    for i, p in enumerate(payloads):
        if not isinstance(p, (bytes, bytearray, memoryview)):
            raise ValueError(f"payloads[{i}] must be bytes, got {type(p).__name__}")
    payloads = [bytes(p) for p in payloads]
    body = _header(model_tag(model_id), shapes, [len(p) for p in payloads]) + b"".join(payloads)
    if len(body) + 4 > MAX_STREAM_BYTES:
        raise ValueError(f"stream of {len(body) + 4} bytes exceeds MAX_STREAM_BYTES={MAX_STREAM_BYTES}")
    return body + struct.pack("<I", zlib.crc32(body))


def header_size(model_id: str, shapes: dict, payloads) -> int:
    """Bytes of the header for these fields (the CRC adds 4 more); the fixed cost of a stream.

    ``payloads`` is the list of payload lengths (their varints are part of the header), or
    just their number, counting each length as one byte (payloads under 128 bytes).
    """
    lengths = [0] * payloads if isinstance(payloads, int) else [int(n) for n in payloads]
    return len(_header(model_tag(model_id), _check_shapes(shapes), lengths))


# --------------------------------------------------------------------------- unpack
class _Reader:
    def __init__(self, data: bytes, end: int):
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise BitstreamError(
                f"truncated stream: {what} needs {n} bytes at offset {self.pos}, "
                f"only {self.end - self.pos} remain before the CRC"
            )
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u(self, fmt: str, what: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def varint(self, what: str, limit: int) -> int:
        """Read an unsigned LEB128 integer of at most 5 bytes, refused above ``limit``."""
        value = 0
        for i in range(5):
            byte = self.take(1, what)[0]
            if i and byte == 0:  # a trailing zero group: the same number has a shorter code
                raise BitstreamError(f"{what}: non-canonical varint")
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if value > limit:
                    raise BitstreamError(f"{what} = {value} exceeds limits (<= {limit})")
                return value
        raise BitstreamError(f"{what}: varint longer than 5 bytes")


def unpack(data: bytes, expected_model_id: str | None = None) -> Container:
    """Parse and verify a stream written by :func:`pack`.

    Raises
    ------
    BitstreamError
        If the stream is too short, has a wrong magic or unsupported version, declares
        sizes beyond the limits or beyond the bytes present (truncation), fails its CRC32
        (corruption), or was written by a model other than ``expected_model_id``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_STREAM_BYTES:
        raise BitstreamError(f"stream of {len(data)} bytes exceeds MAX_STREAM_BYTES={MAX_STREAM_BYTES}")
    if len(data) < len(MAGIC) + 2 + 4:
        raise BitstreamError(f"truncated stream: {len(data)} bytes is shorter than the smallest header")
    if data[:4] != MAGIC:
        raise BitstreamError(f"not an mdic-lab bitstream: magic is {data[:4]!r}, expected {MAGIC!r}")
    version = struct.unpack("<H", data[4:6])[0]
    if version != FORMAT_VERSION:
        raise BitstreamError(
            f"unsupported bitstream format version {version} (this decoder reads version {FORMAT_VERSION})"
        )
    crc_ok = struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    try:
        container = _parse(data, version)
    except BitstreamError as err:
        if crc_ok:  # a well-formed CRC over a malformed body: a writer bug or a forged stream
            raise
        raise BitstreamError(f"corrupted or truncated stream (CRC32 mismatch; {err})") from None
    if not crc_ok:
        raise BitstreamError("corrupted stream: CRC32 mismatch (the bytes were altered after writing)")
    if expected_model_id is not None:
        if container.model_tag != model_tag(expected_model_id):
            raise BitstreamError(
                f"wrong model: stream was encoded by a model with tag {container.model_tag.hex()}, "
                f"but the decoder is {expected_model_id!r} (tag {model_tag(expected_model_id).hex()})"
            )
        container = dataclasses.replace(container, model_id=expected_model_id)
    return container


def _parse(data: bytes, version: int) -> Container:
    r = _Reader(data, len(data) - 4)
    r.pos = 6
    tag = r.take(MODEL_TAG_BYTES, "model tag")
    n_shapes = r.u("<B", "shape count")
    shapes = {}
    for i in range(n_shapes):
        ln = r.u("<B", f"shape {i} name length")
        try:
            name = r.take(ln, f"shape {i} name").decode()
        except UnicodeDecodeError:
            raise BitstreamError(f"shape {i} name is not valid UTF-8") from None
        ndim = r.u("<B", f"shape {name!r} ndim")
        dims = tuple(r.varint(f"shape {name!r} dim {k}", MAX_DIM) for k in range(ndim))
        if _prod(dims) > MAX_ELEMENTS:
            raise BitstreamError(f"shape {name!r} = {dims} exceeds limits (elements <= {MAX_ELEMENTS})")
        if not name or name in shapes:
            raise BitstreamError(f"shape {i} name {name!r} is empty or duplicated")
        shapes[name] = dims
    n_pay = r.varint("payload count", MAX_PAYLOADS)
    lengths = [r.varint(f"payload {i} length", MAX_STREAM_BYTES) for i in range(n_pay)]
    remaining = r.end - r.pos
    if sum(lengths) > remaining:
        raise BitstreamError(
            f"truncated stream: payloads declare {sum(lengths)} bytes, only {remaining} present"
        )
    payloads = [r.take(ln, f"payload {i}") for i, ln in enumerate(lengths)]
    if r.pos != r.end:
        raise BitstreamError(f"{r.end - r.pos} unexpected trailing bytes before the CRC")
    return Container(model_tag=tag, shapes=shapes, payloads=payloads, version=version)


# --------------------------------------------------------------------------- checks of decoded fields
def declared_image_size(c: Container, name: str = "x", multiple: int = 1,
                        max_pixels: int = MAX_IMAGE_PIXELS) -> tuple:
    """The ``(H, W)`` a stream declares under ``name``, or :class:`BitstreamError` if it is absurd.

    The container only bounds sizes generically (:data:`MAX_DIM`, :data:`MAX_ELEMENTS`); a codec
    calls this before decoding so that a damaged size never reaches its transforms: two
    dimensions, each a positive multiple of ``multiple``, at most ``max_pixels`` pixels.

    >>> c = unpack(pack("toy@0", {"x": (64, 128)}, []))
    >>> declared_image_size(c, "x", 64)
    (64, 128)
    >>> declared_image_size(unpack(pack("toy@0", {"x": (64, 100)}, [])), "x", 64)
    Traceback (most recent call last):
    ...
    mdic_lab.coding.errors.BitstreamError: shape 'x' = (64, 100): an image size must be two positive multiples of 64
    """
    if name not in c.shapes:
        raise BitstreamError(f"stream lacks the image size {name!r}")
    dims = tuple(c.shapes[name])
    if len(dims) != 2 or any(d <= 0 or d % multiple for d in dims):
        raise BitstreamError(f"shape {name!r} = {dims}: an image size must be two positive multiples of {multiple}")
    if dims[0] * dims[1] > max_pixels:
        raise BitstreamError(f"shape {name!r} = {dims}: {dims[0] * dims[1]} pixels exceeds the decoder's limit "
                             f"of {max_pixels} (MAX_IMAGE_PIXELS)")
    return dims


def require_shape(c: Container, name: str, expected: tuple) -> tuple:
    """Refuse (:class:`BitstreamError`) a stream whose shape ``name`` is not ``expected``.

    A codec derives every latent shape from the image size; a stream that declares another
    one was damaged or forged, and decoding it would allocate by the wrong size.

    >>> require_shape(unpack(pack("toy@0", {"z": (1, 2)}, [])), "z", (1, 2))
    (1, 2)
    """
    expected = tuple(int(d) for d in expected)
    if name not in c.shapes:
        raise BitstreamError(f"stream lacks the shape {name!r}")
    if tuple(c.shapes[name]) != expected:
        raise BitstreamError(f"shape {name!r} = {tuple(c.shapes[name])} does not match the image size "
                             f"(expected {expected})")
    return expected


# --------------------------------------------------------------------------- files
def write_bitstream(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + ``os.replace``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return atomic_write_bytes(path, data)


def read_bitstream(path) -> bytes:
    """Read the bytes of a file written by :func:`write_bitstream` (pass them to :func:`unpack`).

    Raises ``FileNotFoundError`` naming the path, and :class:`BitstreamError` for a file
    larger than :data:`MAX_STREAM_BYTES` (read without loading it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bitstream file not found: {path}")
    size = path.stat().st_size
    if size > MAX_STREAM_BYTES:
        raise BitstreamError(f"{path}: {size} bytes exceeds MAX_STREAM_BYTES={MAX_STREAM_BYTES}")
    return path.read_bytes()
