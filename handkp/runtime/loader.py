"""``load_predictor``: a Predictor for a model file, the backend chosen from the file.

    .pt              torch        a handkp heatmap checkpoint (``handkp.model.checkpoint``)
    .onnx            onnxruntime  our heatmap export or an Ultralytics pose export (from its metadata)
    .engine / .trt   tensorrt     a TensorRT engine with its sidecar ``<engine>.json``
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ModelLoadError
from .backends import OnnxRuntimeBackend, TorchBackend
from .decoders import YOLO_CONF_THRESHOLD, HeatmapDecoder
from .model_file import decoder_from_metadata
from .predictor import Predictor

BACKENDS = ("torch", "onnxruntime", "tensorrt")
SUFFIX_BACKENDS = {".pt": "torch", ".onnx": "onnxruntime", ".engine": "tensorrt", ".trt": "tensorrt"}


def load_predictor(model_path: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0,
                   conf_threshold: float = YOLO_CONF_THRESHOLD) -> Predictor:
    """A predictor for a checkpoint (.pt, torch backend), an ONNX file (onnxruntime) or a TensorRT
    engine. ``backend='auto'`` picks from the file's suffix; ``conf_threshold`` is the YOLO
    decoder's detection threshold."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    suffix = path.suffix.lower()
    if backend == "auto":
        backend = SUFFIX_BACKENDS.get(suffix, "")
    if backend not in BACKENDS:
        raise ModelLoadError(f"{path}: unknown backend '{backend}', expected one of {BACKENDS}")
    expected = [s for s, b in SUFFIX_BACKENDS.items() if b == backend]
    if suffix not in expected:
        raise ModelLoadError(f"{path}: the {backend} backend runs a {' or '.join(expected)} file, not a {suffix} file")
    if backend == "torch":
        from ..model.checkpoint import load_checkpoint

        model, codec, _ = load_checkpoint(path)
        return Predictor(HeatmapDecoder(codec), "torch", TorchBackend(model, device), codec.input_size)
    if backend == "onnxruntime":
        run = OnnxRuntimeBackend(path, device, threads)
        decoder, size = decoder_from_metadata(run.metadata(), run.input_side, path, conf_threshold)
        return Predictor(decoder, "onnxruntime", run, size)
    from .tensorrt import load_tensorrt_predictor

    return load_tensorrt_predictor(path, device, conf_threshold)


def onnx_decoder(path: str | Path) -> tuple:
    """(decoder, input size) of an ONNX file, read through ONNX Runtime (no onnx package needed)."""
    run = OnnxRuntimeBackend(Path(path), "cpu")
    return decoder_from_metadata(run.metadata(), run.input_side, Path(path))
