"""The TensorRT Python builder: an engine from an ONNX file when no ``trtexec`` is at hand.
TensorRT (``import tensorrt``, 8.5 or newer) is imported only when an engine is built."""

from __future__ import annotations

from pathlib import Path

from ..runtime.tensorrt import import_tensorrt, trt_logger


def build_engine_python(
    onnx_path: str | Path, engine_path: str | Path, fp16: bool = True, max_batch: int = 8, workspace_mib: int = 1024
) -> dict:
    """Builds a serialised engine from ONNX with the TensorRT Python builder (when no trtexec).
    A dynamic batch axis gets the optimisation profile 1 / 1 / ``max_batch``. Returns
    ``{"tensorrt_version", "fp16"}``; raises ModelLoadError (TensorRT absent) or RuntimeError."""
    trt = import_tensorrt()
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") and int(trt.__version__.split(".")[0]) < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    use_fp16 = bool(fp16 and getattr(builder, "platform_has_fast_fp16", True))
    if use_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    inp = network.get_input(0)
    shape = tuple(inp.shape)
    if shape[0] < 0:
        profile = builder.create_optimization_profile()
        rest = shape[1:]
        profile.set_shape(inp.name, (1, *rest), (1, *rest), (max_batch, *rest))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT could not build an engine (see the TensorRT log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    return {"tensorrt_version": trt.__version__, "fp16": use_fp16}
