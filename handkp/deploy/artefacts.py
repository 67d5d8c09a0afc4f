"""Deployable artefacts per target, built from the exported ONNX files, and loading them back.

    summary = build_artefacts("onnxruntime", {"heatmap": Path("models/heatmap.onnx")}, Path("models/engine"), cfg)
    predictor = load_deployed(Path("models/engine"), "heatmap", "onnxruntime")

Targets (``deploy.target``):
  onnxruntime  the ONNX file itself (``<name>.onnx``), run by ONNX Runtime (CPU, or CUDA when present)
  tensorrt     a local TensorRT engine (``<name>.engine``): ``trtexec`` when found (its log kept as
               ``<name>.engine.log``, its performance summary parsed), else the TensorRT Python builder
  jetson       an engine built by trtexec on a Jetson over SSH (``handkp.deploy.jetson.JetsonTarget``)
  openvino     an OpenVINO IR (``<name>.xml`` + ``<name>.bin``) for Intel CPUs at ``deploy.openvino.precision``
               fp32 | bf16 | int8 (NNCF post-training quantisation on train images, ``handkp.deploy.openvino``)

Every artefact gets a sidecar ``<artefact>.json`` (kind, codec, input size, source ONNX sha256, how it
was built; for OpenVINO the precision), which the TensorRT and OpenVINO backends read. Everything is
built in a temporary folder beside the output folder, which replaces the output folder only when
every artefact is complete: a failure leaves no partial engine behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..core.device import gpu_name, resolve_device
from ..core.errors import HandkpError, ModelLoadError
from ..core.io import replace_dir, sha256_file, temp_dir_beside, write_json
from ..core.paths import ENGINE_DIR, ENGINE_METRICS, HEATMAP_ONNX, IMAGE_CACHE, YOLO_ONNX
from ..runtime import Predictor, load_predictor
from ..runtime.loader import onnx_decoder
from ..runtime.model_file import decoder_to_metadata
from ..runtime.tensorrt import write_sidecar
from .jetson import JetsonTarget, RemoteError
from .openvino import OpenVinoBuildError, build_openvino_ir, check_precision
from .quantize import quantize_int8
from .tensorrt import build_engine_python
from .trtexec import TrtexecLogError, parse_trtexec_log

TARGETS = ("onnxruntime", "tensorrt", "jetson", "openvino")
TARGET_SUFFIXES = {"onnxruntime": ".onnx", "openvino": ".xml"}  # the others: .engine
TARGET_BACKENDS = {"onnxruntime": "onnxruntime", "openvino": "openvino"}  # the others: tensorrt
OPENVINO_FIELDS = ("precision",)
JETSON_FIELDS = (
    "host",
    "user",
    "port",
    "key",
    "remote_dir",
    "trtexec",
    "known_hosts",
    "ssh_config",
    "connect_timeout_s",
)


class DeployError(HandkpError):
    """An artefact could not be built; the message names the target, the model and the step."""


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise DeployError(f"unknown deploy.target '{target}', expected one of {TARGETS}")
    return target


def artefact_path(out_dir: str | Path, name: str, target: str) -> Path:
    """``<out_dir>/<name>.onnx`` (onnxruntime), ``<out_dir>/<name>.xml`` (openvino, its weights in
    ``<name>.bin``) or ``<out_dir>/<name>.engine`` (tensorrt, jetson)."""
    return Path(out_dir) / f"{name}{TARGET_SUFFIXES.get(check_target(target), '.engine')}"


def openvino_precision(cfg: dict) -> str:
    """``deploy.openvino.precision`` (fp32 when unset; unknown keys and precisions refused)."""
    ov_cfg = dict(cfg.get("openvino") or {})
    unknown = sorted(set(ov_cfg) - set(OPENVINO_FIELDS))
    if unknown:
        raise DeployError(f"deploy.openvino: unknown keys {unknown}, expected some of {list(OPENVINO_FIELDS)}")
    try:
        return check_precision(str(ov_cfg.get("precision") or "fp32"))
    except OpenVinoBuildError as err:
        raise DeployError(str(err)) from err


def onnx_metadata(onnx_path: Path) -> dict:
    """kind, codec (dict or None) and input size of an exported ONNX file (ours or Ultralytics')."""
    return decoder_to_metadata(*onnx_decoder(onnx_path))


def jetson_target(jetson_cfg: dict) -> JetsonTarget:
    """A JetsonTarget from the ``deploy.jetson`` params (unknown keys refused)."""
    unknown = sorted(set(jetson_cfg) - set(JETSON_FIELDS))
    if unknown:
        raise DeployError(f"deploy.jetson: unknown keys {unknown}, expected some of {list(JETSON_FIELDS)}")
    if not jetson_cfg.get("host"):
        raise DeployError("deploy.jetson.host is not set")
    fields = {k: v for k, v in jetson_cfg.items() if v is not None}
    return JetsonTarget(**fields)


def _gpu_name() -> str:
    return gpu_name() or "unknown GPU"


def _trtexec_args(onnx_path: Path, engine_path: Path, fp16: bool, extra: list) -> list[str]:
    args = [f"--onnx={onnx_path}", f"--saveEngine={engine_path}"]
    return args + (["--fp16"] if fp16 else []) + [str(a) for a in extra]


def _find_trtexec(trtexec: str | None) -> str | None:
    if not trtexec:
        return None
    if os.sep in str(trtexec):
        path = Path(trtexec).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(trtexec)


def _build_tensorrt_local(onnx_path: Path, engine_path: Path, cfg: dict) -> dict:
    """A local engine: trtexec when found, else the TensorRT Python builder."""
    fp16, extra = bool(cfg.get("fp16", True)), list(cfg.get("trtexec_args") or [])
    trtexec = _find_trtexec(cfg.get("trtexec", "trtexec"))
    if trtexec:
        proc = subprocess.run(
            [trtexec, *_trtexec_args(onnx_path, engine_path, fp16, extra)],
            capture_output=True,
            text=True,
            errors="replace",
        )
        log_text = (
            proc.stdout if not proc.stderr.strip() else f"{proc.stdout.rstrip()}\n\n--- stderr ---\n{proc.stderr}"
        )
        engine_path.with_name(engine_path.name + ".log").write_text(log_text)
        tail = "\n".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-15:])
        if proc.returncode != 0:
            raise DeployError(
                f"step 'run trtexec' on this machine ({trtexec}) exited with status {proc.returncode}:\n{tail}"
            )
        try:
            metrics = parse_trtexec_log(proc.stdout)
        except TrtexecLogError as err:
            raise DeployError(f"step 'parse trtexec output' on this machine: {err}") from err
        if not engine_path.is_file():
            raise DeployError(f"step 'run trtexec' on this machine: trtexec wrote no engine {engine_path.name}")
        return {"builder": "trtexec", "fp16": fp16, **metrics}
    try:
        info = build_engine_python(onnx_path, engine_path, fp16=fp16)
    except ModelLoadError as err:
        raise DeployError(
            f"target tensorrt needs trtexec (deploy.trtexec='{cfg.get('trtexec')}' not found) "
            f"or the TensorRT Python package: {err}"
        ) from err
    except RuntimeError as err:
        raise DeployError(f"step 'build engine (TensorRT Python builder)' on this machine: {err}") from err
    return {"builder": "tensorrt-python", **info}


def _input_predictor(onnx_path: Path) -> Predictor:
    """A predictor of ``onnx_path`` that only pre-processes: the model's own input convention,
    exactly as at run time (for calibration inputs)."""
    decoder, size = onnx_decoder(onnx_path)
    return Predictor(decoder, "calibration", None, size)


def _build_openvino(onnx_path: Path, dest: Path, cfg: dict, calibration_images: list[np.ndarray] | None) -> dict:
    """The IR at ``deploy.openvino.precision``; int8 calibrated on ``calibration_images`` (RGB
    uint8) pre-processed by the model's own decoder, exactly as at run time."""
    precision = openvino_precision(cfg)
    inputs, kind = None, "heatmap"
    if precision == "int8":
        if not calibration_images:
            raise DeployError(
                "deploy.openvino.precision int8 needs calibration images (train images of the image cache)"
            )
        prep = _input_predictor(onnx_path)
        inputs, kind = [prep.preprocess(image)[0] for image in calibration_images], prep.kind
    try:
        return build_openvino_ir(onnx_path, dest, precision, inputs, kind)
    except OpenVinoBuildError as err:
        raise DeployError(str(err)) from err


def _artefact_size_mb(dest: Path) -> float:
    files = [dest] + ([dest.with_suffix(".bin")] if dest.suffix == ".xml" else [])
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 2**20, 3)


def build_artefact(
    target: str,
    onnx_path: str | Path,
    dest_dir: str | Path,
    name: str,
    cfg: dict,
    jetson: JetsonTarget | None = None,
    calibration_images: list[np.ndarray] | None = None,
) -> dict:
    """Builds one model's artefact (+ sidecar) for ``target`` into ``dest_dir``; returns what is
    known about it (size, builder, trtexec's performance summary for engines built by trtexec;
    OpenVINO's precision and versions). ``calibration_images`` (RGB uint8): an INT8 IR's calibration."""
    onnx_path, dest = Path(onnx_path), artefact_path(dest_dir, name, target)
    if not onnx_path.is_file():
        raise DeployError(f"{onnx_path}: ONNX file not found (run the export stages first)")
    try:
        meta = onnx_metadata(onnx_path)
    except ModelLoadError as err:
        raise DeployError(str(err)) from err
    fp16 = bool(cfg.get("fp16", True))
    if target == "onnxruntime":
        shutil.copyfile(onnx_path, dest)
        info = {"builder": "copy"}
    elif target == "tensorrt":
        info = _build_tensorrt_local(onnx_path, dest, cfg)
        info.setdefault("device", _gpu_name())
    elif target == "openvino":
        info = _build_openvino(onnx_path, dest, cfg, calibration_images)
    else:
        jetson = jetson or jetson_target(cfg.get("jetson") or {})
        metrics = jetson.build_engine(onnx_path, dest, fp16=fp16, extra_args=list(cfg.get("trtexec_args") or []))
        info = {"builder": "trtexec", "host": jetson.host, "fp16": fp16, **metrics}
    info["size_mb"] = _artefact_size_mb(dest)
    sidecar = {
        **meta,
        "name": name,
        "target": target,
        "source": str(onnx_path),
        "source_sha256": sha256_file(onnx_path),
        **{k: v for k, v in info.items() if k in SIDECAR_INFO},
    }
    write_sidecar(dest, sidecar)
    return info


SIDECAR_INFO = (
    "builder",
    "fp16",
    "host",
    "device",
    "tensorrt_version",
    "precision",
    "openvino_version",
    "nncf_version",
    "calibration_images",
)


def build_int8(onnx_path: Path, runtime: str, folder: Path, name: str, calibration_images: list[np.ndarray]) -> Path:
    """The INT8 file of ``onnx_path`` for ``runtime``, built in ``folder``: ONNX Runtime's static
    quantisation (``<name>.int8.onnx``) or an NNCF IR (``openvino/<name>.xml``), calibrated on the
    RGB images ``calibration_images``, each pre-processed by the model's own decoder."""
    if runtime == "onnxruntime":
        prep = _input_predictor(onnx_path)
        return quantize_int8(
            onnx_path, folder / f"{name}.int8.onnx", [prep.preprocess(image)[0] for image in calibration_images]
        )
    build_artefact(
        "openvino",
        onnx_path,
        folder / "openvino",
        name,
        {"openvino": {"precision": "int8"}},
        calibration_images=calibration_images,
    )
    return artefact_path(folder / "openvino", name, "openvino")


def _device_model(jetson: JetsonTarget) -> str:
    """The remote device's model ("NVIDIA Jetson Orin Nano ..."), else its CPU architecture."""
    try:
        out = jetson.run("cat /proc/device-tree/model 2>/dev/null || uname -m", step="read device model", timeout_s=30)
    except RemoteError:
        return f"unknown device at {jetson.host}"
    return out.replace("\x00", "").strip() or f"unknown device at {jetson.host}"


def build_artefacts(
    target: str,
    onnx_files: dict[str, Path],
    out_dir: str | Path,
    cfg: dict,
    calibration_images: list[np.ndarray] | None = None,
) -> dict:
    """Builds every model's artefact for ``target`` and replaces ``out_dir`` with them, all or nothing.
    ``calibration_images`` (RGB uint8) calibrate INT8 artefacts (openvino at precision int8).

    Returns ``{"target", "device"?, <name>: {size_mb, builder, trtexec metrics…}}`` (the engine
    stage's metrics). Raises DeployError, or RemoteError (names host and step, with the remote stderr)."""
    check_target(target)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    summary: dict = {"target": target}
    jetson = jetson_target(cfg.get("jetson") or {}) if target == "jetson" else None
    if target == "openvino":
        summary["precision"] = openvino_precision(cfg)
    tmp = temp_dir_beside(out_dir)
    try:
        for name, onnx_path in onnx_files.items():
            try:
                summary[name] = build_artefact(target, onnx_path, tmp, name, cfg, jetson, calibration_images)
            except DeployError as err:
                raise DeployError(f"target {target}, model {name}: {err}") from err
        if jetson is not None:
            summary["device"] = _device_model(jetson)
        elif target == "tensorrt":
            summary["device"] = _gpu_name()
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


# ---- running deployed artefacts ----------------------------------------------------------------
def deployed_device(target: str, device: str = "auto") -> str:
    """``deploy.device`` -> the device for load_predictor: for onnxruntime ``auto`` is ``cuda`` when
    ONNX Runtime has the CUDA provider and PyTorch sees a GPU, else ``cpu``; openvino's ``auto`` is
    its CPU; engines always run on CUDA."""
    if check_target(target) == "openvino":
        return "cpu" if device == "auto" else device
    if target != "onnxruntime":
        return "auto" if device in ("auto", "cpu") else device
    if device != "auto":
        return device
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "cpu"
    return resolve_device("auto")


def load_deployed(out_dir: str | Path, name: str, target: str, device: str = "auto", threads: int = 0) -> Predictor:
    """The runtime Predictor of a built artefact (ModelLoadError when it cannot run here, e.g. a
    Jetson engine on this machine, TensorRT/CUDA absent, or a bf16 IR on a CPU without bfloat16).
    An OpenVINO IR runs at the precision its sidecar records."""
    path = artefact_path(out_dir, name, target)
    backend = TARGET_BACKENDS.get(target, "tensorrt")
    return load_predictor(path, backend=backend, device=deployed_device(target, device), threads=threads)


def run_engine(params: dict) -> dict:
    """The engine stage: the deployable artefacts of the heatmap model and the YOLO baseline for
    ``deploy.target`` -> models/engine/ (each with its sidecar) and reports/deploy/engine.json.
    An INT8 OpenVINO IR is calibrated on ``quantize.calibration_images`` train images of the
    image cache (the seeded pick of the quantize stage). All or nothing: a failure leaves no models/engine/."""
    cfg = params["deploy"]
    target = cfg["target"]
    if not HEATMAP_ONNX.is_file():
        raise DeployError(f"{HEATMAP_ONNX} not found; run the export stage first")
    files = {"heatmap": HEATMAP_ONNX}
    if YOLO_ONNX.is_file():
        files["yolo"] = YOLO_ONNX
    else:
        print(f"note: {YOLO_ONNX} not found (no YOLO export yet): the YOLO baseline gets no {target} artefact")
    calibration = None
    if target == "openvino" and openvino_precision(cfg) == "int8":
        from ..data.cache import ImageCache

        calibration = ImageCache(IMAGE_CACHE).pick(
            "train", params["quantize"]["calibration_images"], seed=params["seed"]
        )
    try:
        summary = build_artefacts(target, files, ENGINE_DIR, cfg, calibration)
    except (HandkpError, ValueError) as err:
        raise DeployError(f"deploy.target={target}; no {ENGINE_DIR}/ was written:\n{err}") from err
    write_json(ENGINE_METRICS, summary)
    print(json.dumps(summary, indent=2))
    return summary
