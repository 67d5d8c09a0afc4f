"""Measuring what ships: PCK on val, latency, speed variants, INT8, robustness, the release and its manifest."""
