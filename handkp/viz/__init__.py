"""Drawing keypoints: the skeleton and the model colours (no matplotlib, no polars: the live app uses it)."""
