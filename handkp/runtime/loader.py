"""``load_predictor``: a Predictor for a model file, the backend chosen from the file.

    .pt              torch        a handkp heatmap checkpoint (``handkp.model.checkpoint``)
    .onnx            onnxruntime  our heatmap export or an Ultralytics pose export (from its metadata)
    .engine / .trt   tensorrt     a TensorRT engine with its sidecar ``<engine>.json``
    .xml             openvino     an OpenVINO IR (+ .bin) with its sidecar ``<name>.xml.json``; the openvino
                                  backend also runs an .onnx file directly (``backend="openvino"``)

``precision`` (fp32 | bf16 | int8) is the openvino backend's (``handkp.runtime.openvino``); the
other backends run what their file holds (torch and onnxruntime: fp32, or the INT8 ONNX file).
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ModelLoadError
from .backends import OnnxRuntimeBackend, TorchBackend
from .decoders import YOLO_CONF_THRESHOLD, HeatmapDecoder
from .model_file import decoder_from_metadata
from .predictor import Predictor

BACKENDS = ("torch", "onnxruntime", "tensorrt", "openvino")
SUFFIX_BACKENDS = {
    ".pt": "torch",
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".trt": "tensorrt",
    ".xml": "openvino",
}
EXTRA_SUFFIXES = {"openvino": (".onnx",)}  # files a backend runs besides those it is picked for by suffix


def load_predictor(
    model_path: str | Path,
    backend: str = "auto",
    device: str = "cpu",
    threads: int = 0,
    conf_threshold: float = YOLO_CONF_THRESHOLD,
    precision: str | None = None,
    flip_test: bool = False,
    refine: bool = False,
    spinning: bool = True,
) -> Predictor:
    """A predictor for a checkpoint (.pt, torch backend), an ONNX file (onnxruntime, or openvino),
    a TensorRT engine or an OpenVINO IR. ``backend='auto'`` picks from the file's suffix;
    ``conf_threshold`` is the YOLO decoder's detection threshold. ``precision`` (openvino: fp32 |
    bf16 | int8) None is the file's own: fp32, or what an IR's sidecar records; torch and
    onnxruntime accept fp32 (what they run), tensorrt none (an engine's precision is built in).
    ``flip_test``: the heatmap model's flip test (``Predictor.infer``), two network passes.
    ``refine``: the heatmap model's refine pass in ``predict``/``predict_batch`` (a second pass on
    the hand's crop, ``Predictor.refine_pass``): twice the network calls (four with the flip test).
    ``spinning`` (onnxruntime only): False for a model that takes turns with another ONNX Runtime
    session on the same cores, as the keypoint model beside the hand detector (``OnnxRuntimeBackend``)."""
    path = Path(model_path)
    predictor = _backend_predictor(path, backend, device, threads, conf_threshold, precision, spinning)
    try:
        if flip_test:
            predictor = predictor.flip_tested()
        if refine:
            predictor = predictor.refined()
    except ModelLoadError as err:
        raise ModelLoadError(f"{path}: {err}") from err
    return predictor


def _backend_predictor(
    path: Path,
    backend: str,
    device: str,
    threads: int,
    conf_threshold: float,
    precision: str | None,
    spinning: bool,
) -> Predictor:
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    suffix = path.suffix.lower()
    if backend == "auto":
        backend = SUFFIX_BACKENDS.get(suffix, "")
    if backend not in BACKENDS:
        raise ModelLoadError(f"{path}: unknown backend '{backend}', expected one of {BACKENDS}")
    expected = [s for s, b in SUFFIX_BACKENDS.items() if b == backend] + list(EXTRA_SUFFIXES.get(backend, ()))
    if suffix not in expected:
        raise ModelLoadError(f"{path}: the {backend} backend runs a {' or '.join(expected)} file, not a {suffix} file")
    if precision is not None and backend != "openvino" and (backend == "tensorrt" or precision != "fp32"):
        raise ModelLoadError(
            f"{path}: the {backend} backend runs the precision its file holds; precision "
            f"'{precision}' is the openvino backend's (fp32 | bf16 | int8)"
        )
    if backend == "openvino":
        from .openvino import load_openvino_predictor

        return load_openvino_predictor(path, device, threads, precision, conf_threshold)
    if backend == "torch":
        from ..model.checkpoint import load_checkpoint

        model, codec, _ = load_checkpoint(path)
        return Predictor(HeatmapDecoder(codec), "torch", TorchBackend(model, device), codec.input_size)
    if backend == "onnxruntime":
        run = OnnxRuntimeBackend(path, device, threads, spinning)
        decoder, size = decoder_from_metadata(run.metadata(), run.input_size, path, conf_threshold)
        return Predictor(decoder, "onnxruntime", run, size)
    from .tensorrt import load_tensorrt_predictor

    return load_tensorrt_predictor(path, device, conf_threshold)


def onnx_decoder(path: str | Path) -> tuple:
    """(decoder, input size) of an ONNX file, read through ONNX Runtime (no onnx package needed)."""
    run = OnnxRuntimeBackend(Path(path), "cpu")
    return decoder_from_metadata(run.metadata(), run.input_size, Path(path))
