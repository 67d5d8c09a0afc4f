"""Measuring what ships: PCK on val, latency, speed variants, INT8, robustness, several hands at once."""
