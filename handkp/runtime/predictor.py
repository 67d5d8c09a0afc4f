"""The predictor: pre-processing -> inference -> post-processing, the same for every model file
and backend (evaluation, benchmark, live app).

    p = load_predictor("models/heatmap.onnx")   # handkp.runtime.loader: backend from the file
    pred = p.predict(rgb)                        # Prediction: keypoints (21, 2) px, scores (21,), found

The model's own part (input convention, decode) is its decoder (``handkp.runtime.decoders``);
the backend is any callable (N, 3, S, S) float32 -> raw outputs. ``flip_tested()`` gives the same
predictor with MMPose's flip test (heatmap mode): two network passes, more accurate keypoints.
``refined()`` gives it MediaPipe's landmarks -> ROI -> landmarks on one image (``refine_pass``):
the whole image letterboxed, then the hand's upright crop placed from those keypoints, twice the
network calls. Besides one image: ``predict_batch`` (several, letterboxed), ``predict_crops``
(images already at the input size, no letterbox: the tracker's crops) and ``detect`` (every hand a
YOLO model sees)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.errors import ModelLoadError
from ..core.images import InputSize, check_rgb, input_hw
from ..core.roi import PALM_KEYPOINTS, crop, palm_size, roi_from_keypoints, to_frame


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


NO_LETTERBOX = Letterbox(1.0, 0.0, 0.0)  # an image that is the network's input as it is


def letterbox(image: np.ndarray, size: InputSize, pad_value: tuple[int, int, int]) -> tuple[np.ndarray, Letterbox]:
    """Fits an RGB uint8 (H, W, 3) image into the input (``size``: a side, or (height, width)),
    keeping its aspect ratio, centred, the rest ``pad_value``."""
    h, w = image.shape[:2]
    th, tw = input_hw(size)
    if (h, w) == (th, tw):
        return image, NO_LETTERBOX
    scale = min(th / h, tw / w)
    nw, nh = min(round(w * scale), tw), min(round(h * scale), th)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.empty((th, tw, 3), dtype=np.uint8)
    out[:] = pad_value
    px, py = (tw - nw) // 2, (th - nh) // 2
    out[py : py + nh, px : px + nw] = resized
    return out, Letterbox(nw / w, float(px), float(py))


class Predictor:
    """A decoder (the model's input convention and decode), a backend and the input size (a side;
    a YOLO export may have a rectangular input, (height, width)); with
    ``flip_test`` the heatmaps are those of the flip test (``infer``); with ``refine``, ``predict``
    and ``predict_batch`` add the refine pass (``refine_pass``)."""

    def __init__(
        self,
        decoder,
        backend_name: str,
        run: Callable[[np.ndarray], np.ndarray],
        input_size: InputSize,
        flip_test: bool = False,
        refine: bool = False,
    ):
        for wanted, what in (
            (flip_test, "the flip test averages heatmaps"),
            (refine, "the refine pass runs the keypoint model again on the hand's crop"),
        ):
            if wanted and decoder.kind != "heatmap":
                raise ModelLoadError(f"{what}: it runs the heatmap model, not a {decoder.kind} model")
        self.decoder, self.backend, self.run, self.input_size = decoder, backend_name, run, input_size
        self.flip_test, self.refine = flip_test, refine

    def flip_tested(self) -> Predictor:
        """This predictor with the flip test (ModelLoadError for a YOLO model)."""
        return Predictor(self.decoder, self.backend, self.run, self.input_size, True, self.refine)

    def refined(self) -> Predictor:
        """This predictor with the refine pass in ``predict`` and ``predict_batch`` (ModelLoadError
        for a YOLO model)."""
        return Predictor(self.decoder, self.backend, self.run, self.input_size, self.flip_test, True)

    @property
    def kind(self) -> str:
        """``heatmap`` or ``yolo``."""
        return self.decoder.kind

    @property
    def codec(self):
        """The heatmap codec (None for YOLO)."""
        return getattr(self.decoder, "codec", None)

    @property
    def inference_precision(self) -> str | None:
        """What the backend computes in, as it reports it (OpenVINO: f32, bf16); None from a
        backend that does not say (it runs what its file holds)."""
        report = getattr(self.run, "inference_precision", None)
        return report() if report is not None else None

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """RGB uint8 (H, W, 3) -> (1, 3, S, S) float32 (a rectangular input: (1, 3, h, w)) and the
        transform back to image px."""
        check_rgb(image)
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
        """The hand in an RGB uint8 (H, W, 3) image, keypoints in its px: the image letterboxed
        to the input, then with ``refine`` the refine pass."""
        x, box = self.preprocess(image)
        first = self.postprocess(self.infer(x), box)
        return self.refine_pass([image], [first])[0] if self.refine else first

    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """Like ``predict`` for several images, in one backend call (with ``refine``: two, the
        second on the crops of the images whose hand it refines)."""
        prepared = [self.preprocess(im) for im in images]
        raw = self.infer(np.concatenate([x for x, _ in prepared]))
        first = [self.postprocess(raw[i : i + 1], box) for i, (_, box) in enumerate(prepared)]
        return self.refine_pass(images, first) if self.refine else first

    def refine_pass(self, images: list[np.ndarray], first: list[Prediction], upright: bool = True) -> list[Prediction]:
        """MediaPipe's landmarks -> ROI -> landmarks: for each RGB uint8 (H, W, 3) image and its
        first prediction (keypoints in that image's px) whose hand was found with finite palm
        keypoints of some extent, the model again on the hand's ROI (``roi_from_keypoints``,
        turned upright unless ``upright`` is False) cut at the input size (``crop``), all the crops
        in one ``predict_crops`` call, keypoints mapped back to image px (``to_frame``). A second
        pass that finds no hand keeps the first prediction, as does an image it does not run on;
        the heatmap model always finds one (its presence says how sure it is), so its second
        pass is kept. Used by ``predict``/``predict_batch`` with ``refine``; callable on any
        predictor (``handkp.track.MultiHandPipeline`` refines the tracker's crops with it)."""
        if len(images) != len(first):
            raise ValueError(f"{len(first)} first predictions for {len(images)} images")
        todo = [i for i, p in enumerate(first) if _placeable(p)]
        rois = [roi_from_keypoints(first[i].keypoints, upright=upright) for i in todo]
        crops = [crop(images[i], [roi], self.input_size) for i, roi in zip(todo, rois)]
        second = self.predict_crops(np.concatenate(crops)) if crops else []
        out = list(first)
        for i, roi, p in zip(todo, rois, second):
            if p.found:
                out[i] = Prediction(to_frame(roi, p.keypoints, self.input_size), p.scores, True, p.presence)
        return out

    def predict_crops(self, crops: np.ndarray) -> list[Prediction]:
        """Like ``predict_batch`` for (N, S, S, 3) uint8 RGB images already at the input size (S =
        ``input_size``: e.g. ``handkp.core.roi.crop``'s crops), as they are: no letterbox, one
        backend call (two with the flip test), keypoints in crop px; never the refine pass (the
        caller placed the crops). No crops: no call, no predictions."""
        if not len(crops):
            return []
        raw = self.infer(self.decoder.to_input(crops))
        return [self.postprocess(raw[i : i + 1], NO_LETTERBOX) for i in range(len(crops))]

    def detect(self, image: np.ndarray):
        """Every hand a YOLO-pose model sees in an RGB uint8 (H, W, 3) image, best first:
        ``handkp.runtime.decoders.Detections`` in image px (the decoder's ``detections``: its
        confidence threshold, NMS, boxes clipped to the image). ValueError for a heatmap model
        (one hand per image: ``predict``)."""
        if self.kind != "yolo":
            raise ValueError(f"detect needs a YOLO-pose model; a {self.kind} model finds one hand per image (predict)")
        x, box = self.preprocess(image)
        return self.decoder.detections(self.infer(x), box, (image.shape[1], image.shape[0]))


def _placeable(prediction: Prediction) -> bool:
    """Whether a prediction's hand gives a ROI: found, palm keypoints finite and not all at one point."""
    palm = prediction.keypoints[list(PALM_KEYPOINTS)]
    return prediction.found and bool(np.isfinite(palm).all()) and palm_size(prediction.keypoints) > 0
