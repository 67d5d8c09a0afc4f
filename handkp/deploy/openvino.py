"""OpenVINO IRs (``deploy.target: openvino``): an exported ONNX file -> ``<name>.xml`` + ``<name>.bin``.

    info = build_openvino_ir(Path("models/heatmap.onnx"), Path("models/engine/heatmap.xml"), "int8", calibration)

fp32 and bf16 give the same IR (the ONNX graph converted, weights kept in fp32): bf16 is how the
runtime compiles it (``handkp.runtime.openvino``), recorded in the sidecar. int8 is NNCF's
post-training quantisation (``nncf.quantize``, the MIXED preset: symmetric weights, asymmetric
activations) calibrated on inputs pre-processed exactly as at run time; for a YOLO file the box
and keypoint decode of its head (the Add/Sub/Mul/Div and DFL ops after the last convolutions,
and the sigmoids) stays in floating point, as Ultralytics' own OpenVINO INT8 export does, since
quantising pixel coordinates to 256 levels would cost pixels.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import HandkpError, ModelLoadError
from ..runtime.openvino import PRECISIONS, import_openvino


class OpenVinoBuildError(HandkpError):
    """An IR could not be built (the message names the file and the step)."""


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise OpenVinoBuildError(f"unknown deploy.openvino.precision '{precision}', expected one of {PRECISIONS}")
    return precision


def yolo_head_ignored_scope(model):
    """NNCF's IgnoredScope for an Ultralytics pose export: its head's decode (the ops directly
    under ``/model.<last>/`` named Add/Sub/Mul/Div, its ``dfl`` block) and every Sigmoid."""
    import nncf

    layers = [int(m.group(1)) for op in model.get_ops() if (m := re.match(r"/model\.(\d+)/", op.get_friendly_name()))]
    if not layers:
        return nncf.IgnoredScope(types=["Sigmoid"], validate=False)
    head = max(layers)
    return nncf.IgnoredScope(
        patterns=[rf"/model\.{head}/(Add|Sub|Mul|Div)(_\d+)?", rf"/model\.{head}/dfl/.*"],
        types=["Sigmoid"],
        validate=False,
    )


def quantize_openvino(model, calibration_inputs: list[np.ndarray], kind: str):
    """An INT8 ``openvino.Model`` from ``model`` (fp32), calibrated on (1, 3, S, S) float32 inputs."""
    try:
        import nncf
    except ImportError as err:
        raise OpenVinoBuildError(
            "deploy.openvino.precision int8 needs NNCF (no Python module 'nncf'): pip install nncf"
        ) from err
    if not calibration_inputs:
        raise OpenVinoBuildError("INT8 quantisation needs at least one calibration image")
    nncf.set_log_level(logging.WARNING)
    return nncf.quantize(
        model,
        nncf.Dataset([np.ascontiguousarray(x, np.float32) for x in calibration_inputs]),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(calibration_inputs),
        ignored_scope=yolo_head_ignored_scope(model) if kind == "yolo" else None,
    )


def build_openvino_ir(
    onnx_path: str | Path,
    xml_path: str | Path,
    precision: str = "fp32",
    calibration_inputs: list[np.ndarray] | None = None,
    kind: str = "heatmap",
) -> dict:
    """Converts ``onnx_path`` to the IR ``xml_path`` (+ its ``.bin``, both written whole or not at
    all); ``precision`` int8 quantises it on ``calibration_inputs``. Returns what is known about
    the build (builder, precision, OpenVINO and NNCF versions, calibration images)."""
    check_precision(precision)
    try:
        ov = import_openvino()
    except ModelLoadError as err:
        raise OpenVinoBuildError(f"deploy.target openvino: {err}") from err
    onnx_path, xml_path = Path(onnx_path), Path(xml_path)
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as err:
        raise OpenVinoBuildError(f"step 'openvino.convert_model' of {onnx_path}: {err}") from err
    info = {"builder": "openvino", "precision": precision, "openvino_version": ov.get_version().split("-")[0]}
    if precision == "int8":
        calibration_inputs = list(calibration_inputs or [])
        try:
            model = quantize_openvino(model, calibration_inputs, kind)
        except OpenVinoBuildError as err:
            raise OpenVinoBuildError(f"{onnx_path}: {err}") from err
        except Exception as err:
            raise OpenVinoBuildError(f"step 'nncf.quantize' of {onnx_path}: {err}") from err
        import nncf

        info.update(nncf_version=nncf.__version__, calibration_images=len(calibration_inputs))
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{xml_path.name}.", dir=xml_path.parent) as tmp:
        tmp_xml = Path(tmp) / xml_path.name  # save_model writes <stem>.bin beside it
        try:
            ov.save_model(model, str(tmp_xml), compress_to_fp16=False)  # fp16 weights would change fp32 results
        except Exception as err:
            raise OpenVinoBuildError(f"step 'openvino.save_model' to {xml_path}: {err}") from err
        os.replace(
            tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin")
        )  # the .bin first: no .xml without its .bin
        os.replace(tmp_xml, xml_path)
    return info
