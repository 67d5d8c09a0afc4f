"""The ground floor: keypoints, the heatmap codec, metrics, image conventions, atomic files, devices, errors, paths, params."""
