"""targets: render the Gaussian heatmap targets of a few train images at the model's output
size -> reports/figures/targets.png (the codec itself encodes on the fly during training)."""
import sys
from pathlib import Path

import cv2
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.codec import codec_for_model  # noqa: E402
from handkp.config import load_params  # noqa: E402
from handkp.dataset import read_rgb, split_arrays  # noqa: E402
from handkp.preview import target_sheet  # noqa: E402

N_IMAGES = 4

if __name__ == "__main__":
    params = load_params()
    codec = codec_for_model(params["model"], params["codec"], params["data"]["image_size"])
    images, keypoints = split_arrays(pl.read_parquet("data/prepared/keypoints.parquet"), "train")
    step = max(1, len(images) // N_IMAGES)
    picked = list(range(0, len(images), step))[:N_IMAGES]
    sheet = target_sheet([read_rgb(Path("data/raw") / images[i]) for i in picked], keypoints[picked], codec)
    Path("reports/figures").mkdir(parents=True, exist_ok=True)
    cv2.imwrite("reports/figures/targets.png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
