"""The runtime API: one predictor (pre-processing -> inference -> post-processing) for every model
file and backend.

    from handkp.runtime import load_predictor
    p = load_predictor("models/heatmap.onnx")   # .pt (torch), .onnx (onnxruntime), .engine (tensorrt), .xml (openvino)
    pred = p.predict(rgb_uint8_hwc)              # Prediction(keypoints (21, 2) px, scores (21,), found)
"""

from .loader import BACKENDS, load_predictor
from .predictor import Prediction, Predictor

__all__ = ["BACKENDS", "Prediction", "Predictor", "load_predictor"]
