"""Working codes on toy sources: Slepian–Wolf by syndromes, Wyner–Ziv by quantize-and-bin,
and a learned Wyner–Ziv compressor."""
