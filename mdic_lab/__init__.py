"""mdic_lab: distributed image compression with side information at the decoder.

Data (synthetic stereo world, KITTI Stereo, Cityscapes), real bitstreams, metrics and
BD tools, NDIC and MDIC models, training and evaluation.
"""

__version__ = "0.1.0"
