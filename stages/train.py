"""train: the heatmap network on the train split, model selection on the dev slice
-> models/heatmap/best.pt, curves in reports/train/heatmap/ (dvclive).
Resumes from models/heatmap_checkpoint/ after an interruption. Several GPUs:
`torchrun --nproc_per_node N stages/train.py`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.models import PretrainedWeightsError  # noqa: E402
from handkp.train import train  # noqa: E402

if __name__ == "__main__":
    try:
        best = train(load_params(), Path("data/prepared/keypoints.parquet"), Path("data/raw"),
                     out_dir=Path("models/heatmap"), ckpt_dir=Path("models/heatmap_checkpoint"), live_dir=Path("reports/train/heatmap"))
    except PretrainedWeightsError as err:
        sys.exit(f"train failed: {err}")
    print("best dev metrics:", {k: round(v, 4) for k, v in best.items()})
