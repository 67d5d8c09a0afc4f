"""INT8 variant for the CPU target: ONNX Runtime static quantisation (QDQ, per-channel weights)
calibrated on train images pre-processed exactly as at run time."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..core.io import atomic_path


def quantize_int8(fp32_onnx: str | Path, int8_onnx: str | Path, calibration_inputs: list[np.ndarray]) -> Path:
    """``fp32_onnx`` -> ``int8_onnx`` calibrated on (1, 3, S, S) float32 inputs; keeps the
    model's metadata (so ``load_predictor`` reads it as the same model). Written atomically."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_onnx, int8_onnx = Path(fp32_onnx), Path(int8_onnx)
    source = onnx.load(str(fp32_onnx))
    input_name = source.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration_inputs)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {input_name: x}

    int8_onnx.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{int8_onnx.name}.", dir=int8_onnx.parent) as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        model = onnx.load(str(quantized))
        del model.metadata_props[:]
        model.metadata_props.extend(source.metadata_props)
        with atomic_path(int8_onnx) as final:
            onnx.save(model, str(final))
    return int8_onnx
