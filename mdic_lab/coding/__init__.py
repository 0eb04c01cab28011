"""The bitstream: range coding of symbols and a versioned, checked container.

>>> from mdic_lab.coding import pack, unpack, encode_categorical, decode_categorical
"""

from .arithmetic import (
    CategoricalDecoder,
    CategoricalEncoder,
    StreamDecoder,
    StreamEncoder,
    cdf_likelihoods,
    decode_categorical,
    decode_cdf,
    decode_gaussian_conditional,
    encode_categorical,
    encode_cdf,
    encode_gaussian_conditional,
    gaussian_conditional_likelihoods,
)
from .bpp import bits_from_likelihoods, bpp_from_bytes, bpp_from_likelihoods
from .container import (
    FORMAT_VERSION,
    Container,
    header_size,
    model_fingerprint,
    pack,
    read_bitstream,
    unpack,
    write_bitstream,
)
from .errors import BitstreamError

__all__ = [
    "BitstreamError", "Container", "FORMAT_VERSION", "pack", "unpack", "header_size",
    "model_fingerprint", "write_bitstream", "read_bitstream",
    "StreamEncoder", "StreamDecoder", "CategoricalEncoder", "CategoricalDecoder",
    "encode_categorical", "decode_categorical", "encode_gaussian_conditional",
    "decode_gaussian_conditional", "gaussian_conditional_likelihoods",
    "encode_cdf", "decode_cdf", "cdf_likelihoods",
    "bpp_from_bytes", "bpp_from_likelihoods", "bits_from_likelihoods",
]
