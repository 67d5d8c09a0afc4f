"""TensorRT engines: the ``tensorrt`` backend of the runtime API and the sidecar metadata that
travels with an engine (built by ``handkp.deploy``).

An engine file holds no handkp metadata, so each engine has a sidecar ``<engine>.json`` (written
when the engine is built, see ``handkp.deploy.artefacts``) with its kind (``heatmap`` | ``yolo``), codec
and input size. ``load_tensorrt_predictor`` reads it and wraps the engine in the same
``Predictor`` as every other backend: the pre-processing and decode are the runtime's decoders, not copied.

TensorRT (``import tensorrt``, 8.5 or newer) is imported only when an engine is loaded;
CUDA buffers and the stream come from PyTorch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.codec import HeatmapCodec
from ..core.errors import ModelLoadError
from ..core.images import fixed_input_size
from ..core.io import write_json
from .backends import run_per_image
from .decoders import YOLO_CONF_THRESHOLD, HeatmapDecoder, YoloPoseDecoder
from .predictor import Predictor

SIDECAR_SUFFIX = ".json"
KINDS = ("heatmap", "yolo")


# ---- sidecar ---------------------------------------------------------------------------------
def sidecar_path(artefact: str | Path) -> Path:
    """``models/engine/heatmap.engine`` -> ``models/engine/heatmap.engine.json``."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + SIDECAR_SUFFIX)


def write_sidecar(artefact: str | Path, meta: dict) -> Path:
    """Writes the sidecar of ``artefact``; ``meta`` needs ``kind``, ``codec`` (dict or None), ``input_size``."""
    missing = [k for k in ("kind", "codec", "input_size") if k not in meta]
    if missing or meta["kind"] not in KINDS:
        raise ValueError(f"sidecar metadata needs kind in {KINDS}, codec and input_size; got {meta}")
    return write_json(sidecar_path(artefact), meta, sort_keys=True)


def read_sidecar(artefact: str | Path) -> dict:
    """The sidecar of ``artefact``; ModelLoadError when it is missing or malformed."""
    path = sidecar_path(artefact)
    if not path.is_file():
        raise ModelLoadError(
            f"{artefact}: no sidecar {path.name} beside the engine (kind, codec); "
            "build engines with the engine stage (handkp.deploy.artefacts), which writes it"
        )
    try:
        meta = json.loads(path.read_text())
        kind, size = meta["kind"], meta["input_size"]
        size = int(size) if np.ndim(size) == 0 else fixed_input_size([int(v) for v in size])  # a side or [h, w]
        codec = HeatmapCodec(**meta["codec"]) if meta.get("codec") else None
    except Exception as err:
        raise ModelLoadError(f"{path}: malformed engine sidecar ({err})") from err
    if kind not in KINDS or (kind == "heatmap" and codec is None):
        raise ModelLoadError(f"{path}: sidecar kind must be one of {KINDS} (heatmap with a codec), got {kind!r}")
    return {**meta, "kind": kind, "input_size": size, "codec_obj": codec}


# ---- TensorRT / CUDA availability -------------------------------------------------------------
def import_tensorrt():
    """The ``tensorrt`` module; ModelLoadError when it is not installed."""
    try:
        import tensorrt as trt
    except ImportError as err:
        raise ModelLoadError(
            "TensorRT is not installed (no Python module 'tensorrt'): install NVIDIA TensorRT's Python package "
            "(pip install tensorrt, matching your CUDA), or use deploy.target onnxruntime"
        ) from err
    return trt


def cuda_device(device: str):
    """The torch CUDA device for ``device`` (auto | cuda | cuda:N); ModelLoadError without CUDA."""
    import torch

    if device not in ("auto", "cuda") and not str(device).startswith("cuda:"):
        raise ModelLoadError(f"TensorRT engines run on a CUDA device, not on '{device}'")
    if not torch.cuda.is_available():
        raise ModelLoadError("TensorRT needs a CUDA GPU, and PyTorch sees none (torch.cuda.is_available() is False)")
    return torch.device("cuda" if device == "auto" else device)


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT engines can run here, else why not (for skips and notes)."""
    try:
        import_tensorrt()
        cuda_device("auto")
    except ModelLoadError as err:
        return str(err)
    return None


def trt_logger(trt):
    return trt.Logger(trt.Logger.WARNING)


# ---- the backend -----------------------------------------------------------------------------
class TensorRTBackend:
    """A deserialised engine with one input and one output; numpy in, numpy out.

    Engines with a fixed batch run a larger batch one image at a time (as the ONNX Runtime
    backend does); engines with a dynamic batch get the batch's shape set per call."""

    def __init__(self, path: Path, device: str = "auto"):
        trt = import_tensorrt()
        import torch

        self.torch, self.device = torch, cuda_device(device)
        with torch.cuda.device(self.device):
            self.runtime = trt.Runtime(trt_logger(trt))
            self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
            if self.engine is None:
                raise ModelLoadError(
                    f"{path}: TensorRT {trt.__version__} cannot deserialise this engine (built by another "
                    "TensorRT version, for another GPU, or not an engine); rebuild it on this machine"
                )
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(f"{path}: expected an engine with 1 input and 1 output, got {inputs} -> {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_shape = tuple(self.engine.get_tensor_shape(self.input_name))
        self.fixed_batch = self.input_shape[0] if self.input_shape[0] > 0 else None
        self.input_dtype = self._torch_dtype(trt, self.engine.get_tensor_dtype(self.input_name))
        self.output_dtype = self._torch_dtype(trt, self.engine.get_tensor_dtype(self.output_name))

    @staticmethod
    def _torch_dtype(trt, dtype):
        import torch

        table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        if dtype not in table:
            raise ModelLoadError(f"unsupported engine I/O dtype {dtype}")
        return table[dtype]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        split = run_per_image(self, x, self.fixed_batch)
        if split is not None:
            return split
        torch = self.torch
        with torch.cuda.device(self.device):
            inp = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.input_dtype)
            if self.fixed_batch is None:
                self.context.set_input_shape(self.input_name, tuple(inp.shape))
            out = torch.empty(
                tuple(self.context.get_tensor_shape(self.output_name)), dtype=self.output_dtype, device=self.device
            )
            self.context.set_tensor_address(self.input_name, inp.data_ptr())
            self.context.set_tensor_address(self.output_name, out.data_ptr())
            stream = torch.cuda.current_stream(self.device)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            stream.synchronize()
            return out.float().cpu().numpy()


def load_tensorrt_predictor(
    path: str | Path, device: str = "auto", conf_threshold: float = YOLO_CONF_THRESHOLD
) -> Predictor:
    """A Predictor for a TensorRT engine with its sidecar ``<engine>.json`` (``device`` auto, cpu:
    the default CUDA device; cuda:N). ModelLoadError when
    the sidecar is missing, TensorRT or CUDA is absent, or the engine does not deserialise here."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: engine file not found")
    meta = read_sidecar(path)
    # An engine runs on CUDA only: "cpu" (load_predictor's default) means the default CUDA device.
    backend = TensorRTBackend(path, "auto" if device in (None, "auto", "cpu") else device)
    decoder = HeatmapDecoder(meta["codec_obj"]) if meta["kind"] == "heatmap" else YoloPoseDecoder(conf_threshold)
    return Predictor(decoder, "tensorrt", backend, meta["input_size"])
