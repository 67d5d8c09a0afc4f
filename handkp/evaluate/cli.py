"""``python -m handkp evaluate``: PCK of any model file on a split of the prepared data, with the
pipeline's evaluator (e.g. the released model on val, from a fresh clone after `dvc repro prepare`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import HandkpError
from ..core.metrics import THRESHOLDS_PX
from ..core.paths import IMAGE_CACHE, PREPARED_TABLE
from ..runtime import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="a .pt checkpoint, .onnx file or TensorRT engine (e.g. release/heatmap.onnx)",
    )
    parser.add_argument("--split", default="val", choices=("train", "dev", "val"), help="split of the keypoint table")
    parser.add_argument("--backend", default="auto", choices=("auto", *BACKENDS), help="auto: from the file's suffix")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--conf-threshold", type=float, default=0.25, help="YOLO files: the detection threshold")
    parser.add_argument(
        "--flip-test",
        action="store_true",
        help="heatmap models: average the heatmaps of each image and of its mirror image (two network passes)",
    )
    parser.add_argument(
        "--refine",
        action="store_true",
        help="heatmap models: a second pass on each image's hand, cropped upright round the first pass's "
        "keypoints (MediaPipe's landmarks -> ROI -> landmarks; twice the network calls)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--table", type=Path, default=PREPARED_TABLE, help="the prepared keypoint table (dvc repro prepare)"
    )
    parser.add_argument("--images", type=Path, default=IMAGE_CACHE, help="the decoded-image cache (dvc repro prepare)")
    parser.add_argument("--json", type=Path, help="also write the metrics here")


def main(args: argparse.Namespace) -> int:
    import polars as pl

    from ..core.metrics import compute_metrics
    from ..data.cache import ImageCache
    from ..runtime import load_predictor
    from .evaluation import predict_images, rounded

    try:
        if not args.table.is_file():
            raise HandkpError(f"{args.table}: no prepared keypoint table; run `dvc repro prepare` first")
        predictor = load_predictor(
            args.model,
            args.backend,
            args.device,
            conf_threshold=args.conf_threshold,
            flip_test=args.flip_test,
            refine=args.refine,
        )
        gt = pl.read_parquet(args.table).filter(pl.col("split") == args.split)
        names = gt["image"].unique().sort().to_list()
        metrics, _, _ = compute_metrics(gt, predict_images(predictor, names, ImageCache(args.images), args.batch_size))
    except HandkpError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 1
    options = [name for name, on in (("the flip test", args.flip_test), ("the refine pass", args.refine)) if on]
    print(
        f"{args.model}{' with ' + ' and '.join(options) if options else ''} on {args.split} "
        f"({metrics['n_images']:,} images): "
        + ", ".join(f"PCK@{t}px {metrics[f'pck_{t}px']:.3f}" for t in THRESHOLDS_PX)
        + f", AUC {metrics['auc_0_15px']:.3f}, EPE {metrics['epe_mean_px']:.2f} px, {metrics['missed_images']} missed"
    )
    if args.json:
        from ..core.io import write_json

        write_json(args.json, rounded(metrics))
    return 0
