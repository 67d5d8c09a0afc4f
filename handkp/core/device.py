"""Where torch-side work runs: ``auto`` means CUDA when PyTorch sees a GPU, else the CPU.

Imports torch only when asked, so runtime code without torch (ONNX Runtime on a Jetson or in
the live app) can use it: without torch there is no CUDA device here."""

from __future__ import annotations

import platform
from pathlib import Path


def cuda_available() -> bool:
    """True when PyTorch is installed and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(name: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` or ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` pass through."""
    name = "auto" if name in (None, "") else str(name)
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    if name != "cpu" and name != "cuda" and not name.startswith("cuda:"):
        raise ValueError(f"unknown device '{name}', expected auto, cpu, cuda or cuda:N")
    return name


def gpu_name() -> str | None:
    """The first CUDA GPU's name, or None without one."""
    if not cuda_available():
        return None
    import torch

    return torch.cuda.get_device_name(0)


def cpu_model_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name from /proc/cpuinfo ("model name", or "Model"/"Hardware" on ARM),
    else what ``platform`` knows."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip() == key and v.strip():
                return " ".join(v.split())
    return platform.processor() or platform.machine() or "unknown CPU"
