"""What an exported model file says about itself.

Our heatmap exports carry ONNX metadata (``handkp_kind``, ``handkp_codec``, ``handkp_input``);
Ultralytics pose exports carry ``task: pose``. ``decoder_from_metadata`` turns either into the
decoder that runs the model (``handkp.runtime.decoders``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.codec import HeatmapCodec
from ..core.errors import ModelLoadError
from ..core.images import InputSize, input_hw
from ..core.keypoints import IMAGE_SIZE
from .decoders import YOLO_CONF_THRESHOLD, HeatmapDecoder, YoloPoseDecoder

ONNX_META_KIND = "handkp_kind"  # ONNX metadata keys written by our export
ONNX_META_CODEC = "handkp_codec"
ONNX_META_INPUT = "handkp_input"  # the input convention of a heatmap export
ONNX_META_MODEL_CONFIG = "handkp_model_config"
INPUT_RGB_PIXELS = "rgb_pixels_0_255"  # (N, 3, S, S) float32 RGB pixel values, normalised in the graph


def decoder_from_metadata(
    meta: dict[str, str], input_size: InputSize | None, path: Path, conf_threshold: float = YOLO_CONF_THRESHOLD
) -> tuple[HeatmapDecoder | YoloPoseDecoder, InputSize]:
    """(decoder, input size) from an ONNX model's metadata map and its fixed input size (a side,
    or (height, width): an Ultralytics export may be rectangular); ModelLoadError for a file that is
    neither ours nor an Ultralytics pose export, or an export of an older input convention."""
    if ONNX_META_KIND in meta:
        if meta.get(ONNX_META_INPUT) != INPUT_RGB_PIXELS:
            raise ModelLoadError(
                f"{path}: exported by an older handkp (ImageNet-normalised input, no '{ONNX_META_INPUT}' "
                "metadata); export it again from its checkpoint (dvc repro export)"
            )
        codec = HeatmapCodec(**json.loads(meta[ONNX_META_CODEC]))
        return HeatmapDecoder(codec), codec.input_size
    if meta.get("task") == "pose":
        return YoloPoseDecoder(conf_threshold), input_size or IMAGE_SIZE
    raise ModelLoadError(f"{path}: ONNX file without handkp or Ultralytics pose metadata; export it with this project")


def decoder_to_metadata(decoder: HeatmapDecoder | YoloPoseDecoder, input_size: InputSize) -> dict:
    """``{"kind", "codec", "input_size"}``: what an engine's sidecar records of its model (the
    input size a side, or [height, width] for a rectangular input)."""
    codec = getattr(decoder, "codec", None)
    h, w = input_hw(input_size)
    return {"kind": decoder.kind, "codec": codec.to_dict() if codec else None, "input_size": h if h == w else [h, w]}
