"""Reading trtexec's output: its "=== Performance summary ===" block and its pass/fail line."""

from __future__ import annotations

import re

from ..core.errors import HandkpError

SUMMARY_HEADER = "=== Performance summary ==="

# trtexec's names for the statistics lines → our key prefixes.
_STAT_PREFIXES = {
    "latency": "latency",
    "end-to-end host latency": "end_to_end",
    "enqueue time": "enqueue",
    "h2d latency": "h2d",
    "gpu compute time": "gpu_compute",
    "d2h latency": "d2h",
}
_TO_MS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}
_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}

_LOG_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)?\[[A-Z]\]\s?")  # "[04/07/2025-23:59:50] [I] "
_STAT_ITEM = re.compile(r"(min|max|mean|median|percentile\(\s*([\d.]+)\s*%\s*\))\s*=\s*([-+\d.eE]+)\s*(ms|us|µs|s)\b")
_THROUGHPUT = re.compile(r"^Throughput:\s*([-+\d.eE]+)\s*qps", re.IGNORECASE)
_TOTAL = re.compile(r"^Total (Host Walltime|GPU Compute Time):\s*([-+\d.eE]+)\s*(ms|us|µs|s)\b")
_PASSED = re.compile(r"^&&&& PASSED TensorRT\.trtexec \[TensorRT v(\d+)\]", re.MULTILINE)
_FAILED = re.compile(r"^&&&& FAILED TensorRT\.trtexec.*$", re.MULTILINE)


class TrtexecLogError(HandkpError, ValueError):
    """trtexec output without a usable performance summary."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _percentile_key(p: str) -> str:
    value = float(p)
    return f"p{int(value)}" if value.is_integer() else "p" + f"{value:g}".replace(".", "_")


def tensorrt_version_string(code: int) -> str:
    """TensorRT's packed version number → "major.minor.patch" (v100900 → 10.9.0, v8401 → 8.4.1)."""
    if code >= 100000:  # TensorRT 10+: major*10000 + minor*100 + patch
        major, rest = divmod(code, 10000)
    else:  # TensorRT ≤ 8: major*1000 + minor*100 + patch
        major, rest = divmod(code, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def parse_trtexec_log(text: str) -> dict:
    """Read trtexec's performance summary into a flat dict.

    Keys: `throughput_qps`; `<stat>_<min|max|mean|median|p90|p95|p99>_ms` for each statistics
    line present (`latency`, `end_to_end`, `enqueue`, `h2d`, `gpu_compute`, `d2h`);
    `total_host_walltime_s`, `total_gpu_compute_s`; `tensorrt_version` ("10.9.0") when the
    `&&&& PASSED` line is there. Only what the log prints is returned, nothing is made up.
    Raises `TrtexecLogError` when there is no performance summary or trtexec reported FAILED.
    """
    failed = _FAILED.search(text)
    if failed:
        raise TrtexecLogError(f"trtexec reported failure: {failed.group(0).strip()}\n{tail(text)}")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if SUMMARY_HEADER in line]
    if not starts:
        raise TrtexecLogError(
            f"no '{SUMMARY_HEADER}' block in the trtexec output; last lines:\n{tail(text) or '(empty)'}"
        )

    metrics: dict = {}
    for raw in lines[starts[-1] + 1 :]:
        line = _LOG_PREFIX.sub("", raw).strip()
        if not line or line.startswith("&&&&") or line.startswith("==="):
            break  # the summary ends at the first empty log line
        m = _THROUGHPUT.match(line)
        if m:
            metrics["throughput_qps"] = float(m.group(1))
            continue
        m = _TOTAL.match(line)
        if m:
            key = "total_host_walltime_s" if m.group(1) == "Host Walltime" else "total_gpu_compute_s"
            metrics[key] = float(m.group(2)) * _TO_S[m.group(3)]
            continue
        name, sep, stats = line.partition(":")
        if not sep:
            continue
        items = _STAT_ITEM.findall(stats)
        if not items:
            continue
        prefix = _STAT_PREFIXES.get(name.strip().lower(), _slug(name))
        for label, percent, value, unit in items:
            stat = _percentile_key(percent) if percent else label
            metrics[f"{prefix}_{stat}_ms"] = float(value) * _TO_MS[unit]

    if "throughput_qps" not in metrics and not any(k.startswith("latency_") for k in metrics):
        raise TrtexecLogError(f"the '{SUMMARY_HEADER}' block has no throughput or latency lines:\n{tail(text)}")
    passed = _PASSED.search(text)
    if passed:
        metrics["tensorrt_version"] = tensorrt_version_string(int(passed.group(1)))
    return metrics
