"""The Ultralytics YOLO-pose baseline: its dataset yaml, offline-safe settings, training and export."""
