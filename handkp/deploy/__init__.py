"""From a trained network to what ships: ONNX export, parity, INT8, TensorRT engines, a Jetson over SSH."""
