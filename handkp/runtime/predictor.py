"""The predictor: pre-processing -> inference -> post-processing, the same for every model file
and backend (evaluation, benchmark, live app).

    p = load_predictor("models/heatmap.onnx")   # handkp.runtime.loader: backend from the file
    pred = p.predict(rgb)                        # Prediction: keypoints (21, 2) px, scores (21,), found

The model's own part (input convention, decode) is its decoder (``handkp.runtime.decoders``);
the backend is any callable (N, 3, S, S) float32 -> raw outputs. ``flip_tested()`` gives the same
predictor with MMPose's flip test (heatmap mode): two network passes, more accurate keypoints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..core.errors import ModelLoadError


@dataclass
class Prediction:
    """keypoints (21, 2) float32 px in the input image; scores (21,) float32; found: False when
    the model found no hand (then keypoints are NaN); presence: how sure the model is that a hand
    is there, in [0, 1] (the heatmap model: the mean of its 21 heatmap peaks; YOLO: the detection's
    confidence)."""

    keypoints: np.ndarray
    scores: np.ndarray
    found: bool = True
    presence: float = 1.0


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


class Predictor:
    """A decoder (the model's input convention and decode), a backend and the input size; with
    ``flip_test`` the heatmaps are those of the flip test (``infer``)."""

    def __init__(self, decoder, backend_name: str, run: Callable[[np.ndarray], np.ndarray], input_size: int,
                 flip_test: bool = False):
        if flip_test and decoder.kind != "heatmap":
            raise ModelLoadError(f"the flip test averages heatmaps: it runs the heatmap model, not a {decoder.kind} model")
        self.decoder, self.backend, self.run, self.input_size = decoder, backend_name, run, input_size
        self.flip_test = flip_test

    def flip_tested(self) -> Predictor:
        """This predictor with the flip test (ModelLoadError for a YOLO model)."""
        return Predictor(self.decoder, self.backend, self.run, self.input_size, flip_test=True)

    @property
    def kind(self) -> str:
        """``heatmap`` or ``yolo``."""
        return self.decoder.kind

    @property
    def codec(self):
        """The heatmap codec (None for YOLO)."""
        return getattr(self.decoder, "codec", None)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """RGB uint8 (H, W, 3) -> (1, 3, S, S) float32 and the transform back to image px."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        boxed, box = letterbox(image, self.input_size, self.decoder.pad_value)
        return self.decoder.to_input(boxed)[None], box

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The model alone: (N, 3, S, S) float32 -> raw outputs. With the flip test, the mean of the
        heatmaps of ``x`` and of its mirror image mirrored back: exact on the codec's cell-centred
        grid (mirroring the image maps heatmap column j to W-1-j), and no channel is swapped (a
        mirrored hand keeps every keypoint's identity)."""
        raw = self.run(x)
        if self.flip_test:
            mirrored = self.run(np.ascontiguousarray(x[..., ::-1]))
            raw = (raw + mirrored[..., ::-1]) * np.float32(0.5)
        return raw

    def postprocess(self, raw: np.ndarray, box: Letterbox) -> Prediction:
        """Raw outputs of one image (batch of 1) -> keypoints in that image's px."""
        return self.decoder.decode(raw, box)

    def predict(self, image: np.ndarray) -> Prediction:
        x, box = self.preprocess(image)
        return self.postprocess(self.infer(x), box)

    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """Like ``predict`` for several images, in one backend call."""
        prepared = [self.preprocess(im) for im in images]
        raw = self.infer(np.concatenate([x for x, _ in prepared]))
        return [self.postprocess(raw[i:i + 1], box) for i, (_, box) in enumerate(prepared)]
