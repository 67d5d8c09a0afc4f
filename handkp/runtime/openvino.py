"""OpenVINO: the ``openvino`` backend of the runtime API (Intel's CPU runtime; fp32, bf16, INT8).

    p = load_predictor("models/engine/heatmap.xml")                      # an IR from the engine stage
    p = load_predictor("models/heatmap.onnx", "openvino", precision="bf16")  # or an ONNX file, directly

It runs an ONNX file directly (its handkp or Ultralytics metadata read with the ``onnx``
package, as ``handkp.runtime.model_file`` expects) or an OpenVINO IR ``<name>.xml`` (+ ``<name>.bin``)
written by the engine stage (``deploy.target: openvino``). An IR holds no handkp metadata, so it has
the sidecar ``<name>.xml.json`` of every built artefact (``handkp.runtime.tensorrt``: kind, codec,
input size), which also records the precision it was built for.

Precision (``INFERENCE_PRECISION_HINT``; always set, as OpenVINO's CPU default is bf16 wherever
the CPU has it):

    fp32   f32
    bf16   bf16, only on a device whose ``OPTIMIZATION_CAPABILITIES`` list BF16 (AVX512_BF16 / AMX)
    int8   an INT8 IR (NNCF post-training quantisation: FakeQuantize ops, ``handkp.deploy.openvino``);
           the layers left unquantised run in f32

OpenVINO (``import openvino``) is imported only when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ModelLoadError
from ..core.images import fixed_input_size
from .backends import run_per_image
from .decoders import YOLO_CONF_THRESHOLD, HeatmapDecoder, YoloPoseDecoder
from .model_file import decoder_from_metadata
from .predictor import Predictor
from .tensorrt import read_sidecar

PRECISIONS = ("fp32", "bf16", "int8")
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
IR_SUFFIX = ".xml"


def import_openvino():
    """The ``openvino`` module; ModelLoadError when it is not installed."""
    try:
        import openvino as ov
    except ImportError as err:
        raise ModelLoadError("OpenVINO is not installed (no Python module 'openvino'): pip install openvino") from err
    return ov


def openvino_device(device: str | None) -> str:
    """``load_predictor``'s device -> an OpenVINO device name: auto / cpu -> CPU; OpenVINO's own
    names (CPU, GPU, NPU, GPU.1 …) as they are; CUDA devices refused."""
    name = str(device or "auto")
    if name.lower() in ("auto", "cpu"):
        return "CPU"
    if name.lower().startswith("cuda"):
        raise ModelLoadError(
            f"the openvino backend runs on OpenVINO's devices (CPU here), not on '{name}'; "
            "use --device cpu, or the onnxruntime / tensorrt backend for CUDA"
        )
    return name.upper()


def device_capabilities(core, device: str) -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of ``device`` (FP32, BF16, INT8 …)."""
    try:
        return [str(c).upper() for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # a plugin without the property
        return []


def precision_unavailable_reason(precision: str, device: str = "CPU") -> str | None:
    """None when ``precision`` runs on ``device`` here, else why not (for skips and notes)."""
    if precision not in PRECISIONS:
        return f"unknown precision '{precision}', expected one of {PRECISIONS}"
    try:
        ov = import_openvino()
        core = ov.Core()
        device = openvino_device(device)
        if device not in core.available_devices:
            return f"OpenVINO has no device '{device}' here (available: {core.available_devices})"
    except ModelLoadError as err:
        return str(err)
    if precision == "bf16" and "BF16" not in device_capabilities(core, device):
        return (
            f"this {device} has no bfloat16 support (OpenVINO's OPTIMIZATION_CAPABILITIES: "
            f"{device_capabilities(core, device)}; bf16 needs AVX512_BF16 or AMX)"
        )
    return None


def is_quantized(model) -> bool:
    """Whether an ``openvino.Model`` is an INT8 model (NNCF's FakeQuantize ops)."""
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def onnx_metadata_map(path: Path) -> dict[str, str]:
    """The metadata map of an ONNX file, read with the ``onnx`` package (weights left unread)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends for a broken file
        raise ModelLoadError(f"{path}: not a readable ONNX file ({err})") from err
    return {p.key: p.value for p in proto.metadata_props}


class OpenVinoBackend:
    """An OpenVINO compiled model with one input and one output; numpy in, numpy out.

    ``precision`` fp32 | bf16 | int8 (int8: the file must be an INT8 IR); ``threads`` 0 leaves
    ``INFERENCE_NUM_THREADS`` to OpenVINO. Compiled with ``PERFORMANCE_HINT`` LATENCY. A model with a
    fixed batch runs a larger batch one image at a time (as the other backends do)."""

    def __init__(self, path: str | Path, device: str = "CPU", precision: str = "fp32", threads: int = 0):
        ov = import_openvino()
        self.path = Path(path)
        if precision not in PRECISIONS:
            raise ModelLoadError(f"{self.path}: unknown precision '{precision}', expected one of {PRECISIONS}")
        self.core = ov.Core()
        self.device = openvino_device(device)
        if self.device not in self.core.available_devices:
            raise ModelLoadError(
                f"{self.path}: OpenVINO has no device '{self.device}' here (available: {self.core.available_devices})"
            )
        try:
            model = self.core.read_model(str(self.path))
        except Exception as err:  # OpenVINO raises RuntimeError-like errors for bad files
            raise ModelLoadError(f"{self.path}: OpenVINO cannot read this model ({err})") from err
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelLoadError(
                f"{self.path}: expected a model with 1 input and 1 output, "
                f"got {len(model.inputs)} -> {len(model.outputs)}"
            )
        quantized = is_quantized(model)
        if precision == "int8" and not quantized:
            raise ModelLoadError(
                f"{self.path}: precision int8 needs an INT8 model (NNCF-quantised IR: build it with "
                "deploy.target openvino and deploy.openvino.precision int8); this one has no FakeQuantize ops"
            )
        if precision != "int8" and quantized:
            raise ModelLoadError(f"{self.path}: an INT8 (FakeQuantize) model runs with precision int8, not {precision}")
        if precision == "bf16" and "BF16" not in device_capabilities(self.core, self.device):
            raise ModelLoadError(
                f"{self.path}: precision bf16 needs bfloat16 support, and this {self.device} has none (OpenVINO's "
                f"OPTIMIZATION_CAPABILITIES: {device_capabilities(self.core, self.device)}; bf16 needs AVX512_BF16 "
                "or AMX); use precision fp32 or int8"
            )
        self.precision, self.threads = precision, int(threads)
        shape = model.inputs[0].get_partial_shape()
        self.fixed_batch = shape[0].get_length() if shape.rank.is_static and shape[0].is_static else None
        self.input_size = (
            fixed_input_size([d.get_length() if d.is_static else None for d in shape])
            if shape.rank.is_static and len(shape) == 4
            else None
        )
        config = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if self.threads > 0:
            config["INFERENCE_NUM_THREADS"] = self.threads
        if self.device == "CPU":
            config["CPU_DENORMALS_OPTIMIZATION"] = True  # as the other backends: no slow denormals
        try:
            self.compiled = self.core.compile_model(model, self.device, config)
        except Exception as err:
            raise ModelLoadError(
                f"{self.path}: OpenVINO cannot compile this model for {self.device} at {precision} ({err})"
            ) from err
        self.request = self.compiled.create_infer_request()

    def on_gpu(self) -> bool:
        """False: where it runs is described by the CPU (``handkp.evaluate.latency.device_description``)."""
        return False

    def inference_precision(self) -> str:
        """What the compiled model runs in, as OpenVINO reports it (f32, bf16)."""
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        return hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        split = run_per_image(self, x, self.fixed_batch)
        if split is not None:
            return split
        self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)  # a copy: the buffer is reused


def load_openvino_predictor(
    path: str | Path,
    device: str = "auto",
    threads: int = 0,
    precision: str | None = None,
    conf_threshold: float = YOLO_CONF_THRESHOLD,
) -> Predictor:
    """A Predictor for an OpenVINO IR (``.xml`` with its ``.bin`` and sidecar ``.xml.json``) or an
    ONNX file, on OpenVINO's ``device`` (auto / cpu: CPU). ``precision`` None: what the IR's sidecar
    records (fp32 for an ONNX file). ModelLoadError for a missing or unreadable file, a missing
    sidecar, OpenVINO absent, or a precision this device or file cannot run."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    if path.suffix.lower() == IR_SUFFIX:
        meta = read_sidecar(path)
        built = meta.get("precision", "fp32")
        backend = OpenVinoBackend(path, device, precision or built, threads)
        decoder = HeatmapDecoder(meta["codec_obj"]) if meta["kind"] == "heatmap" else YoloPoseDecoder(conf_threshold)
        size = meta["input_size"]
    else:
        meta_map = onnx_metadata_map(path)
        backend = OpenVinoBackend(path, device, precision or "fp32", threads)
        decoder, size = decoder_from_metadata(meta_map, backend.input_size, path, conf_threshold)
    return Predictor(decoder, "openvino", backend, size)
