"""Backends: callables (N, 3, S, S) float32 -> raw network outputs, numpy in and out.

TorchBackend runs a module (a checkpoint, for evaluation and the parity reference);
OnnxRuntimeBackend an ONNX file. The TensorRT backend is in ``handkp.runtime.tensorrt``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.device import resolve_device
from ..core.errors import ModelLoadError
from ..core.images import fixed_input_size

SPINNING_KEY = "session.intra_op.allow_spinning"  # ONNX Runtime's session option


def run_per_image(run, x: np.ndarray, fixed_batch: int | None) -> np.ndarray | None:
    """For a backend whose input has a fixed batch: a batch of another size run one image at a
    time (None when the batch fits as it is)."""
    if fixed_batch and x.shape[0] != fixed_batch:
        return np.concatenate([run(x[i : i + 1]) for i in range(x.shape[0])])
    return None


class TorchBackend:
    """A PyTorch module on CPU or CUDA (``auto``: CUDA when PyTorch sees a GPU)."""

    def __init__(self, model, device: str):
        import torch

        self.torch = torch
        torch.set_flush_denormal(True)  # denormal activations make CPU inference many times slower
        self.device = torch.device(resolve_device(device))
        self.model = model.to(self.device).eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(x).to(self.device)).float().cpu().numpy()


class OnnxRuntimeBackend:
    """An ONNX Runtime session; CUDA when asked for and available, else CPU.

    ``spinning``: whether the session's intra-op threads spin-wait for work after a run (ONNX
    Runtime's default: the fastest for one model called back to back). False for a model that takes
    turns with another session on the same cores (the keypoint model and the hand detector of the
    multi-hand pipeline): each session's threads would otherwise spin through the other's runs."""

    def __init__(self, path: Path, device: str, threads: int = 0, spinning: bool = True):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.set_denormal_as_zero", "1")  # as TorchBackend: no slow denormals
        options.add_session_config_entry(SPINNING_KEY, "1" if spinning else "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # ORT raises its own exception types for bad files
            raise ModelLoadError(f"{path}: ONNX Runtime cannot load this model ({err})") from err
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.input_size = fixed_input_size(inp.shape)  # a side, (height, width), or None: not fixed

    def metadata(self) -> dict[str, str]:
        return self.session.get_modelmeta().custom_metadata_map

    def on_gpu(self) -> bool:
        return self.session.get_providers()[0] == "CUDAExecutionProvider"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        split = run_per_image(self, x, self.fixed_batch)
        return split if split is not None else self.session.run(None, {self.input_name: x})[0]
