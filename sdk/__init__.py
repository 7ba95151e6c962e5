"""TTFS SDK: train time-to-first-spike SNNs and quantize them to the integer contract."""

__version__ = "0.1.0"
