"""One runtime API for every model file and backend: the same pre-processing and the same
decode everywhere (evaluation, benchmark, live app).

    p = load_predictor("models/heatmap.onnx", backend="onnxruntime")
    pred = p.predict(rgb)                  # Prediction: keypoints (21, 2) px, scores (21,), found
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .augment import BORDER_RGB
from .codec import HeatmapCodec
from .keypoints import IMAGE_SIZE

BACKENDS = ("torch", "onnxruntime", "tensorrt")
ONNX_META_KIND = "handkp_kind"  # ONNX metadata keys written by our export
ONNX_META_CODEC = "handkp_codec"
ONNX_META_INPUT = "handkp_input"  # the input convention of a heatmap export
INPUT_RGB_PIXELS = "rgb_pixels_0_255"  # (N, 3, S, S) float32 RGB pixel values, normalised in the graph


class ModelLoadError(RuntimeError):
    """A model file that cannot be read, or a model/backend mismatch."""


@dataclass
class Prediction:
    """keypoints (21, 2) float32 px in the input image; scores (21,) float32; found: False when
    the model found no hand (then keypoints are NaN)."""

    keypoints: np.ndarray
    scores: np.ndarray
    found: bool = True


@dataclass(frozen=True)
class Letterbox:
    """Network input px = image px × scale + pad."""

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, keypoints: np.ndarray) -> np.ndarray:
        """(…, 2) px in the network input -> px in the original image."""
        return ((keypoints - np.array([self.pad_x, self.pad_y], dtype=np.float32)) / self.scale).astype(np.float32)


def letterbox(image: np.ndarray, size: int, pad_value: tuple[int, int, int]) -> tuple[np.ndarray, Letterbox]:
    """Fits an RGB uint8 (H, W, 3) image into (size, size, 3), keeping its aspect ratio, centred."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image, Letterbox(1.0, 0.0, 0.0)
    scale = size / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = pad_value
    px, py = (size - nw) // 2, (size - nh) // 2
    out[py:py + nh, px:px + nw] = resized
    return out, Letterbox(nw / w, float(px), float(py))


def rgb_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """(…, H, W, 3) uint8 RGB -> (…, 3, H, W) float32 pixel values 0–255: the heatmap network's
    input (it normalises them itself, see ``handkp.models.HeatmapNet``)."""
    return np.moveaxis(rgb, -1, -3).astype(np.float32, order="C")


def yolo_input(rgb: np.ndarray) -> np.ndarray:
    """(…, H, W, 3) uint8 RGB -> (…, 3, H, W) float32 in [0, 1] (Ultralytics' input)."""
    x = rgb_to_nchw(rgb)
    return np.divide(x, 255.0, out=x)


class TorchBackend:
    """A PyTorch module on CPU or CUDA."""

    def __init__(self, model, device: str):
        import torch

        self.torch = torch
        torch.set_flush_denormal(True)  # denormal activations make CPU inference many times slower
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device)
        self.model = model.to(self.device).eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(x).to(self.device)).float().cpu().numpy()


class OnnxRuntimeBackend:
    """An ONNX Runtime session; CUDA when asked for and available, else CPU."""

    def __init__(self, path: Path, device: str, threads: int = 0):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.set_denormal_as_zero", "1")  # as TorchBackend: no slow denormals
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # ORT raises its own exception types for bad files
            raise ModelLoadError(f"{path}: ONNX Runtime cannot load this model ({err})") from err
        self.input_name = self.session.get_inputs()[0].name
        batch = self.session.get_inputs()[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None

    def model_kind(self) -> tuple[str, HeatmapCodec | None, int]:
        side = self.session.get_inputs()[0].shape[-1]
        return model_kind(self.session.get_modelmeta().custom_metadata_map, side if isinstance(side, int) else None, self.path)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch and x.shape[0] != self.fixed_batch:
            return np.concatenate([self(x[i:i + 1]) for i in range(x.shape[0])])
        return self.session.run(None, {self.input_name: x})[0]


class Predictor:
    """Pre-processing, a backend and the decode for one model.

    kind ``heatmap``: our network; raw output (N, 21, S, S) heatmaps, decoded by the codec.
    kind ``yolo``: an Ultralytics pose export; raw output (N, 5 + 63, A), the best detection kept.
    """

    def __init__(self, kind: str, backend_name: str, run, codec: HeatmapCodec | None = None, input_size: int = IMAGE_SIZE):
        self.kind, self.backend, self.run, self.codec, self.input_size = kind, backend_name, run, codec, input_size
        # letterbox bands: the borders the heatmap net saw in training; Ultralytics' grey for YOLO
        self.pad_value = BORDER_RGB if kind == "heatmap" else (114, 114, 114)
        self.to_input = rgb_to_nchw if kind == "heatmap" else yolo_input

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """RGB uint8 (H, W, 3) -> (1, 3, S, S) float32 and the transform back to image px."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        boxed, box = letterbox(image, self.input_size, self.pad_value)
        return self.to_input(boxed)[None], box

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The model alone: (N, 3, S, S) float32 -> raw outputs."""
        return self.run(x)

    def postprocess(self, raw: np.ndarray, box: Letterbox) -> Prediction:
        """Raw outputs of one image (batch of 1) -> keypoints in that image's px."""
        if self.kind == "heatmap":
            kp, scores = self.codec.decode(raw[:1])
            return Prediction(box.to_image(kp[0]), scores[0], True)
        from .yolo import decode_pose_output

        kp, scores, found = decode_pose_output(raw[:1])
        return Prediction(box.to_image(kp), scores, found)

    def predict(self, image: np.ndarray) -> Prediction:
        x, box = self.preprocess(image)
        return self.postprocess(self.infer(x), box)

    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """Like ``predict`` for several images, in one backend call."""
        prepared = [self.preprocess(im) for im in images]
        raw = self.infer(np.concatenate([x for x, _ in prepared]))
        return [self.postprocess(raw[i:i + 1], box) for i, (_, box) in enumerate(prepared)]


def _load_torch_checkpoint(path: Path, device: str) -> Predictor:
    import torch

    from .models import build_model

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        model = build_model(ckpt["model_config"])
        model.load_state_dict(ckpt["state_dict"])
        codec = HeatmapCodec(**ckpt["codec"])
    except Exception as err:  # a truncated or foreign file fails in many ways
        raise ModelLoadError(f"{path}: not a handkp heatmap checkpoint ({err})") from err
    return Predictor("heatmap", "torch", TorchBackend(model, device), codec, codec.input_size)


def model_kind(meta: dict[str, str], input_side: int | None, path: Path) -> tuple[str, HeatmapCodec | None, int]:
    """(kind, codec or None, input size) from an ONNX model's metadata map."""
    if ONNX_META_KIND in meta:
        if meta.get(ONNX_META_INPUT) != INPUT_RGB_PIXELS:
            raise ModelLoadError(f"{path}: exported by an older handkp (ImageNet-normalised input, no '{ONNX_META_INPUT}' "
                                 "metadata); export it again from its checkpoint (dvc repro export)")
        codec = HeatmapCodec(**json.loads(meta[ONNX_META_CODEC]))
        return meta[ONNX_META_KIND], codec, codec.input_size
    if meta.get("task") == "pose":
        return "yolo", None, input_side or IMAGE_SIZE
    raise ModelLoadError(f"{path}: ONNX file without handkp or Ultralytics pose metadata; export it with this project")


def onnx_model_kind(path: Path) -> tuple[str, HeatmapCodec | None, int]:
    """(kind, codec or None, input size) of an ONNX file, read through ONNX Runtime (no onnx package needed)."""
    return OnnxRuntimeBackend(path, "cpu").model_kind()


def load_predictor(model_path: str | Path, backend: str = "auto", device: str = "cpu", threads: int = 0) -> Predictor:
    """A predictor for a checkpoint (.pt, torch backend) or an ONNX file (onnxruntime).
    ``backend='auto'`` picks from the file's suffix."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    suffix = path.suffix.lower()
    if backend == "auto":
        backend = {".pt": "torch", ".onnx": "onnxruntime", ".engine": "tensorrt", ".trt": "tensorrt"}.get(suffix, "")
    if backend not in BACKENDS:
        raise ModelLoadError(f"{path}: unknown backend '{backend}', expected one of {BACKENDS}")
    if backend == "torch":
        if suffix != ".pt":
            raise ModelLoadError(f"{path}: the torch backend runs a .pt checkpoint, not a {suffix} file")
        return _load_torch_checkpoint(path, device)
    if backend == "onnxruntime":
        if suffix != ".onnx":
            raise ModelLoadError(f"{path}: the onnxruntime backend runs an .onnx file, not a {suffix} file")
        backend_run = OnnxRuntimeBackend(path, device, threads)
        kind, codec, size = backend_run.model_kind()
        return Predictor(kind, "onnxruntime", backend_run, codec, size)
    from .tensorrt import load_tensorrt_predictor

    return load_tensorrt_predictor(path, device)

