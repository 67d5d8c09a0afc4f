"""Model files for the tracking and app tests.

- ``tiny_heatmap_onnx``: the real heatmap network code (a small configuration) with random
  weights, exported to ONNX by the project's exporter: real inference, meaningless keypoints.
- ``standin_yolo_onnx``: a STAND-IN for the YOLO-pose detector: an ONNX graph (Ultralytics'
  input and output layout and its ``task: pose`` metadata) whose output is a fixed array whatever
  the image, so a test chooses the detections; it runs through ONNX Runtime like the real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handkp.core.keypoints import NUM_KEYPOINTS

YOLO_CHANNELS = 4 + 1 + 3 * NUM_KEYPOINTS  # cx, cy, w, h, one class, 21 × (x, y, visibility)


def tiny_heatmap_onnx(out_dir: Path, dynamic_batch: bool = False) -> Path:
    """A small heatmap network (random weights, seed 0) exported to ``out_dir/tiny.onnx``."""
    import torch

    from handkp.core.codec import codec_for_model
    from handkp.deploy.export import export_onnx
    from handkp.model.network import build_model

    cfg = {"pretrained": "none", "backbone_tail": "full", "head": "deconv", "deconv_layers": 3, "deconv_channels": 16}
    torch.manual_seed(0)
    model = build_model(cfg)
    ckpt = Path(out_dir) / "tiny.pt"
    torch.save(
        {
            "model_config": cfg,
            "codec": codec_for_model(cfg, {"sigma": 2.0}).to_dict(),
            "state_dict": model.state_dict(),
        },
        ckpt,
    )
    return export_onnx(ckpt, Path(out_dir) / "tiny.onnx", dynamic_batch=dynamic_batch)


def yolo_raw(
    boxes_cxcywh: list[tuple[float, float, float, float]],
    scores: list[float],
    keypoints: list[np.ndarray] | None = None,
    anchors: int | None = None,
) -> np.ndarray:
    """(1, 68, A) a YOLO-pose raw output, px of the network input: one anchor per box (then
    zero-score anchors up to ``anchors``); keypoints (21, 3) per box (default: the box centre)."""
    n = len(boxes_cxcywh)
    raw = np.zeros((1, YOLO_CHANNELS, max(anchors or n, n)), np.float32)
    for i, (box, score) in enumerate(zip(boxes_cxcywh, scores)):
        raw[0, :4, i] = box
        raw[0, 4, i] = score
        kp = keypoints[i] if keypoints is not None else np.tile([box[0], box[1], 1.0], (NUM_KEYPOINTS, 1))
        raw[0, 5:, i] = np.asarray(kp, np.float32).reshape(-1)
    return raw


def standin_yolo_onnx(
    path: Path, raw: np.ndarray, input_size: int | tuple[int, int] = 224, kpt_shape: str = f"[{NUM_KEYPOINTS}, 3]"
) -> Path:
    """A STAND-IN detector file: output ``output0`` = ``raw`` for any (1, 3, S, S) input (``input_size``
    S, or (height, width) for a rectangular input, as Ultralytics exports at ``imgsz=[h, w]``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    raw = np.asarray(raw, np.float32)
    height, width = (input_size, input_size) if np.ndim(input_size) == 0 else input_size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),  # (1,): uses the input
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["detections", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "standin_yolo_pose",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(raw.shape))],
        initializer=[
            numpy_helper.from_array(raw, "detections"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in {
        "task": "pose",
        "imgsz": f"[{height}, {width}]",
        "kpt_shape": kpt_shape,
        "description": "stand-in YOLO-pose detector: a fixed output",
    }.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def tiny_yolo_onnx(root: Path) -> Path:
    """A real Ultralytics YOLO11n-pose export (21 keypoints, one class, 224 px) with random
    weights, built from Ultralytics' own yaml in ``root`` (not a stand-in: the real network)."""
    import os

    import yaml

    from handkp.yolo.ultralytics import configure_ultralytics

    configure_ultralytics()
    import ultralytics
    from ultralytics import YOLO

    cfg = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/11/yolo11-pose.yaml").read_text())
    cfg.update(kpt_shape=[NUM_KEYPOINTS, 3], nc=1, scale="n")
    (root / "yolo11n-pose-hand.yaml").write_text(yaml.safe_dump(cfg))
    here = os.getcwd()
    os.chdir(root)  # the export of a model built from a .yaml is written to the working folder
    try:
        exported = Path(
            YOLO(str(root / "yolo11n-pose-hand.yaml"), task="pose").export(
                format="onnx", imgsz=224, batch=1, dynamic=False, simplify=False, device="cpu"
            )
        )
    finally:
        os.chdir(here)
    return exported if exported.is_absolute() else root / exported


class PresenceDecoder:
    """STAND-IN decoder for stand-in keypoint models whose raw output (1, 1 + 2K) is the presence
    then the K keypoints in crop px; takes the heatmap model's input convention."""

    kind, pad_value = "heatmap", (0, 0, 0)

    @staticmethod
    def to_input(rgb):
        from handkp.runtime.decoders import rgb_to_nchw

        return rgb_to_nchw(rgb)

    @staticmethod
    def decode(raw, box):
        from handkp.runtime.predictor import Prediction

        presence = float(raw[0, 0])
        return Prediction(
            box.to_image(raw[0, 1:].reshape(NUM_KEYPOINTS, 2)),
            np.full(NUM_KEYPOINTS, presence, np.float32),
            True,
            presence,
        )
