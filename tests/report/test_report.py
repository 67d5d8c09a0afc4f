"""The report stage: README block between markers, wording that follows the numbers, figures."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml

from handkp.core.config import load_params
from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.core.metrics import THRESHOLDS_PX
from handkp.data.archive import DatasetArchive
from handkp.data.cache import write_image_cache
from handkp.report import (
    END_MARKER,
    FIGURE_FILES,
    START_MARKER,
    ReportError,
    ReportPaths,
    load_report_data,
    replace_block,
    run_report,
)
from handkp.report.data import read_dvclive_series
from handkp.report.figures import figure_qualitative
from handkp.report.qualitative import per_image_errors, pick_qualitative
from handkp.report.tables import speed_section
from handkp.viz.colors import YOLO_COLOR
from handkp.viz.skeleton import draw_skeleton

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "report"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _merge(base: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def project_params(**overrides) -> dict:
    """The project's own params.yaml, with ``overrides`` merged in (a None value deletes the key)."""
    return _merge(load_params(ROOT / "params.yaml"), overrides)


def write_params(folder: Path, **overrides) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(project_params(**overrides), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def image_cache(tmp_path_factory) -> Path:
    """An image cache (handkp.data.cache) of the fixture's four val JPEGs, as the prepare stage writes it."""
    raw = FIX / "raw"
    names = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.jpg"))
    table = pl.read_parquet(FIX / "prepared" / "keypoints.parquet").filter(pl.col("image").is_in(names))
    out = tmp_path_factory.mktemp("images")
    with zipfile.ZipFile(out / "raw.zip", "w") as zf:  # the four JPEGs as the fetch stage packs them
        for name in names:
            zf.write(raw / name, name)
    with DatasetArchive(out / "raw.zip") as archive:
        assert write_image_cache(table, archive, out, 224) == {"train": 0, "dev": 0, "val": 4}
    return out


def make_paths(tmp: Path, images: Path, metrics_dir: Path = FIX / "metrics", **over) -> ReportPaths:
    readme = tmp / "README.md"
    if not readme.exists():
        shutil.copyfile(FIX / "readme_template.md", readme)
    kw = dict(
        readme=readme,
        params=tmp / "params.yaml" if (tmp / "params.yaml").exists() else write_params(tmp),
        metrics=str(metrics_dir / "{model}.json"),
        latency=metrics_dir / "latency.json",
        eval_dir=str(FIX / "eval" / "{model}"),
        predictions=str(FIX / "predictions" / "{model}_val.parquet"),
        ground_truth=FIX / "prepared" / "keypoints.parquet",
        images=images,
        train_dir=str(FIX / "train" / "{model}"),
        figures=tmp / "reports" / "figures",
        speed=tmp / "no-speed.json",
        ablation=tmp / "no-ablation.json",
        int8_metrics=tmp / "no-int8.json",
        int8_parity=tmp / "no-parity.json",
        openvino_int8_metrics=str(tmp / "no-openvino-int8-{model}.json"),
        multihand=tmp / "no-multihand.json",
        release=tmp / "no-release.json",
    )
    kw.update(over)
    return ReportPaths(**kw)


def block_of(text: str) -> str:
    return text.split(START_MARKER, 1)[1].split(END_MARKER, 1)[0]


def load_stage():
    spec = importlib.util.spec_from_file_location("report_stage", ROOT / "stages" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, image_cache):
    """One full run through the stage's CLI (figures included), then a second identical run."""
    tmp = tmp_path_factory.mktemp("report")
    paths = make_paths(tmp, image_cache)
    argv = [
        "--readme",
        str(paths.readme),
        "--params",
        str(paths.params),
        "--metrics",
        paths.metrics,
        "--latency",
        str(paths.latency),
        "--eval-dir",
        paths.eval_dir,
        "--predictions",
        paths.predictions,
        "--ground-truth",
        str(paths.ground_truth),
        "--images",
        str(paths.images),
        "--train-dir",
        paths.train_dir,
        "--figures",
        str(paths.figures),
    ]
    stage = load_stage()
    assert stage.main(argv) == 0
    first = paths.readme.read_bytes()
    assert stage.main(argv) == 0
    second = paths.readme.read_bytes()
    return paths, first, second


def test_tables_hold_exactly_the_fixture_numbers(full_run):
    _, first, _ = full_run
    block = block_of(first.decode())
    assert "| heatmap | 0.412 | 0.812 | 0.921 | 0.957 | 0.981 | 0.803 | 2.31 | 1.87 | 0 |" in block
    assert "| YOLO | 0.433 | 0.790 | 0.903 | 0.957 | 0.975 | 0.781 | 2.87 | 2.04 | 3 |" in block
    on = "`onnxruntime` on `Intel Xeon (CPU, 2 threads)`"
    assert f"| heatmap | {on} | model-only | 1.84 | 2.05 | 2.71 | 531.2 |" in block
    assert f"| heatmap | {on} | end-to-end | 3.12 | 3.40 | 4.02 | 312.4 |" in block
    assert f"| YOLO | {on} | model-only | 2.61 | 2.88 | 3.30 | 377.9 |" in block
    assert f"| YOLO | {on} | end-to-end | 2.95 | 3.21 | 3.86 | 331.0 |" in block
    # Every table number comes from the files: recompute the rows from the JSON.
    for name, shown in (("heatmap", "heatmap"), ("yolo", "YOLO")):
        m = json.loads((FIX / "metrics" / f"{name}.json").read_text())
        cells = [f"{m[f'pck_{t}px']:.3f}" for t in THRESHOLDS_PX]
        cells += [f"{m['auc_0_15px']:.3f}", f"{m['epe_mean_px']:.2f}", f"{m['epe_median_px']:.2f}"]
        assert f"| {shown} | " + " | ".join(cells) + " | " in block


def test_block_states_what_the_numbers_are(full_run):
    paths, first, _ = full_run
    block = block_of(first.decode())
    params = yaml.safe_load(paths.params.read_text())
    train, model, yolo = params["train"], params["model"], params["yolo"]
    assert "the `val` split, 129 images, 2,693 visible keypoints" in block
    assert "train 2 images, dev 1 image, val 4 images" in block
    assert f"image_size={params['data']['image_size']}" in block
    assert "source=" not in block  # where the data came from is not a setting of the numbers
    assert f"{train['epochs']} epochs, batch {train['batch_size']}, lr {train['lr']} (`train`)" in block
    assert f"backbone_tail={model['backbone_tail']}, head={model['head']}" in block
    assert f"model={yolo['model']}" in block and f"{yolo['epochs']} epochs, batch {yolo['batch']} (`yolo`)" in block
    assert "target `onnxruntime`, device `Intel Xeon (CPU, 2 threads)`" in block
    for name in FIGURE_FILES.values():
        assert f"](reports/figures/{name})" in block


@pytest.mark.parametrize(
    "overrides,wording",
    [
        ({"model": {"pretrained": "none"}}, "trained from scratch, random initialisation (`model.pretrained: none`)"),
        ({"model": {"pretrained": True}}, "pretrained weights (`model.pretrained: true`)"),
        ({"model": {"pretrained": "imagenet"}}, "initialised from `imagenet` (`model.pretrained`)"),
        (
            {"model": {"pretrained": "none"}, "train": {"warm_start": "release/first_run_state.pt"}},
            "continued from the weights of `release/first_run_state.pt` (`train.warm_start`), a run trained from "
            "scratch, random initialisation (`model.pretrained: none`); this run's schedule ",
        ),
        ({"yolo": {"pretrained": "none"}}, "trained from scratch, random initialisation (`yolo.pretrained: none`)"),
        (
            {"yolo": {"pretrained": "download", "model": "yolo11n-pose"}},
            "the official pretrained weights of `yolo11n-pose` (`yolo.pretrained: download`)",
        ),
        (
            {"yolo": {"pretrained": None, "model": "yolo11n-pose.pt"}},
            "initialised from pretrained weights `yolo11n-pose.pt`",
        ),
    ],
)
def test_initialisation_wording(tmp_path, image_cache, overrides, wording):
    write_params(tmp_path, **overrides)
    block = run_report(make_paths(tmp_path, image_cache), figures=False).markdown
    assert wording in block
    assert "initialised from `none`" not in block


def test_second_run_is_a_no_op_and_text_outside_markers_is_untouched(full_run):
    _, first, second = full_run
    assert first == second
    template = (FIX / "readme_template.md").read_text()
    text = first.decode()
    before, after = template.split(START_MARKER)[0], template.split(END_MARKER)[1]
    assert text.startswith(before + START_MARKER + "\n")
    assert text.endswith(END_MARKER + after)
    assert "stale content" not in text
    assert "\n20" not in block_of(text)  # no dates or timestamps


def test_readme_keeps_its_line_endings_and_mode(tmp_path, image_cache):
    readme = tmp_path / "README.md"
    readme.write_bytes((FIX / "readme_template.md").read_bytes().replace(b"\n", b"\r\n"))
    readme.chmod(0o644)
    result = run_report(make_paths(tmp_path, image_cache), figures=False)
    raw = readme.read_bytes()
    assert result.readme_changed
    assert raw.count(b"\n") == raw.count(b"\r\n") and b"### Comparison\r\n" in raw
    assert readme.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "params.yaml"]  # no temporary file left


def test_wording_follows_the_numbers_mixed_fixture(full_run):
    _, first, _ = full_run
    block = block_of(first.decode())
    assert "- YOLO is more accurate at 1 px (PCK 0.433 vs 0.412)." in block
    assert "- The heatmap model is more accurate at 3 px (PCK 0.812 vs 0.790)." in block
    assert "- The two models are equally accurate at 7 px (PCK 0.957 each)." in block
    assert "- The heatmap model has the lower mean keypoint error (2.31 px vs 2.87 px)." in block
    assert "- The heatmap model missed fewer hands (0 vs 3 images with no hand found)." in block
    assert "- The heatmap model is faster model-only (p50 1.84 ms vs 2.61 ms, 531.2 vs 377.9 FPS)." in block
    assert "- YOLO is faster end-to-end (p50 2.95 ms vs 3.12 ms, 331.0 vs 312.4 FPS)." in block
    assert "both run in real time" in block
    assert "YOLO is more accurate at 3 px" not in block


def _swapped_metrics(tmp: Path) -> Path:
    """The fixture with the two models' numbers exchanged: YOLO now wins where heatmap won."""
    d = tmp / "swapped"
    d.mkdir()
    shutil.copyfile(FIX / "metrics" / "heatmap.json", d / "yolo.json")
    shutil.copyfile(FIX / "metrics" / "yolo.json", d / "heatmap.json")
    lat = json.loads((FIX / "metrics" / "latency.json").read_text())
    lat["heatmap"], lat["yolo"] = lat["yolo"], lat["heatmap"]
    (d / "latency.json").write_text(json.dumps(lat))
    return d


def test_wording_flips_when_yolo_wins(tmp_path, image_cache):
    paths = make_paths(tmp_path, image_cache, _swapped_metrics(tmp_path))
    run_report(paths, figures=False)
    block = block_of(paths.readme.read_text())
    assert "- YOLO is more accurate at 3 px (PCK 0.812 vs 0.790)." in block
    assert "- YOLO is more accurate at 5 px (PCK 0.921 vs 0.903)." in block
    assert "- The heatmap model is more accurate at 1 px (PCK 0.433 vs 0.412)." in block
    assert "- YOLO has the lower mean keypoint error (2.31 px vs 2.87 px)." in block
    assert "- YOLO missed fewer hands (0 vs 3 images with no hand found)." in block
    assert "- YOLO is faster model-only (p50 1.84 ms vs 2.61 ms" in block
    assert "- The heatmap model is faster end-to-end (p50 2.95 ms vs 3.12 ms" in block
    assert "The heatmap model is more accurate at 3 px" not in block
    assert "| heatmap | 0.433 | 0.790 |" in block


def test_ties_at_displayed_precision(tmp_path, image_cache):
    d = tmp_path / "tied"
    d.mkdir()
    m = json.loads((FIX / "metrics" / "heatmap.json").read_text())
    (d / "heatmap.json").write_text(json.dumps(m))
    m["pck_3px"] += 0.0002  # 0.8122 shows as 0.812 too
    (d / "yolo.json").write_text(json.dumps(m))
    lat = json.loads((FIX / "metrics" / "latency.json").read_text())
    lat["yolo"] = dict(lat["heatmap"])
    (d / "latency.json").write_text(json.dumps(lat))
    block = run_report(make_paths(tmp_path, image_cache, d), figures=False).markdown
    for t in THRESHOLDS_PX:
        assert f"The two models are equally accurate at {t} px" in block
    assert "Both models have the same mean keypoint error (2.31 px)." in block
    assert "Neither model missed a hand." in block
    assert "The two models are equally fast end-to-end (p50 3.12 ms" in block
    assert "more accurate" not in block and "is faster" not in block


def test_the_refine_pass_has_its_own_end_to_end_row(tmp_path, image_cache):
    d = tmp_path / "refined"
    shutil.copytree(FIX / "metrics", d)
    lat = json.loads((d / "latency.json").read_text())
    lat["heatmap_refine"] = {"e2e_p50_ms": 6.5012, "e2e_p90_ms": 7.1, "e2e_p99_ms": 8.25, "e2e_fps": 150.04}
    (d / "latency.json").write_text(json.dumps(lat))
    block = run_report(make_paths(tmp_path, image_cache, d), figures=False).markdown
    on = "`onnxruntime` on `Intel Xeon (CPU, 2 threads)`"
    rows = [line for line in block.splitlines() if line.startswith("| heatmap")]
    refine = f"| heatmap, refine pass (2 passes) | {on} | end-to-end | 6.50 | 7.10 | 8.25 | 150.0 |"
    assert (
        refine in rows
        and rows.index(refine) == rows.index(f"| heatmap | {on} | end-to-end | 3.12 | 3.40 | 4.02 | 312.4 |") + 1
    )
    assert "refine pass (2 passes) | " + on + " | model-only" not in block  # model-only is one pass: the row above


def test_missing_yolo_is_left_out_not_a_crash(tmp_path, image_cache):
    """YOLO not trained yet: only the heatmap model's files exist."""
    tree = tmp_path / "reports"
    (tree / "metrics").mkdir(parents=True)
    shutil.copyfile(FIX / "metrics" / "heatmap.json", tree / "metrics" / "heatmap.json")
    lat = json.loads((FIX / "metrics" / "latency.json").read_text())
    del lat["yolo"]
    (tree / "metrics" / "latency.json").write_text(json.dumps(lat))
    shutil.copytree(FIX / "eval" / "heatmap", tree / "eval" / "heatmap")
    shutil.copytree(FIX / "train" / "heatmap", tree / "train" / "heatmap")
    (tree / "predictions").mkdir()
    shutil.copyfile(FIX / "predictions" / "heatmap_val.parquet", tree / "predictions" / "heatmap_val.parquet")
    paths = make_paths(
        tmp_path,
        image_cache,
        tree / "metrics",
        eval_dir=str(tree / "eval" / "{model}"),
        predictions=str(tree / "predictions" / "{model}_val.parquet"),
        train_dir=str(tree / "train" / "{model}"),
    )
    result = run_report(paths, figures=True)
    block = block_of(paths.readme.read_text())
    assert block.strip() == result.markdown
    assert "| heatmap | 0.412 |" in block
    assert "| YOLO |" not in block
    assert "YOLO is left out" in block and "yolo.json" in block
    assert "No comparison yet" in block
    assert sorted(p.name for p in result.figures.values()) == sorted(FIGURE_FILES.values())
    for path in result.figures.values():
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_nothing_yet_still_writes_every_figure(tmp_path):
    nowhere = tmp_path / "nowhere"
    paths = make_paths(
        tmp_path,
        nowhere / "images",
        nowhere,
        eval_dir=str(nowhere / "{model}"),
        predictions=str(nowhere / "{model}.parquet"),
        train_dir=str(nowhere / "{model}"),
        ground_truth=nowhere / "gt.parquet",
        params=nowhere / "params.yaml",
    )
    result = run_report(paths, figures=True)
    assert "No model has been evaluated yet." in result.markdown
    assert sorted(p.name for p in result.figures.values()) == sorted(FIGURE_FILES.values())
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in result.figures.values())


def test_every_figure_is_a_valid_png(full_run):
    paths, _, _ = full_run
    for name in FIGURE_FILES.values():
        path = paths.figures / name
        raw = path.read_bytes()
        assert raw[:8] == PNG_SIGNATURE, name
        assert len(raw) > 10_000, name
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None, name
        h, w = img.shape[:2]
        assert w >= 400 and h >= 300, (name, w, h)
        assert img.std() > 5, name  # not blank
    assert sorted(p.name for p in paths.figures.iterdir()) == sorted(FIGURE_FILES.values())  # no temporary files


def test_qualitative_figure_shows_the_cached_images(tmp_path, image_cache):
    """The panel is drawn on the cache's pixels; without a cache every panel is grey."""
    with_cache = figure_qualitative(load_report_data(make_paths(tmp_path, image_cache)), tmp_path / "with.png")
    grey = figure_qualitative(load_report_data(make_paths(tmp_path, tmp_path / "no-cache")), tmp_path / "grey.png")
    a = cv2.imread(str(with_cache))
    b = cv2.imread(str(grey))
    assert a.shape == b.shape
    assert np.count_nonzero(cv2.absdiff(a, b).max(axis=2) > 40) > 0.05 * a.shape[0] * a.shape[1]


def test_missing_markers_is_a_clear_error(tmp_path, image_cache):
    readme = tmp_path / "README.md"
    readme.write_text("# No markers here\n")
    with pytest.raises(ReportError, match=str(readme).replace("\\", "\\\\") + ".*report markers"):
        run_report(make_paths(tmp_path, image_cache), figures=False)
    assert readme.read_text() == "# No markers here\n"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "report.py"), "--readme", str(readme)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert str(readme) in proc.stderr and "report:start" in proc.stderr


def test_replace_block_rejects_swapped_or_duplicated_markers():
    s, e = START_MARKER, END_MARKER
    with pytest.raises(ReportError, match="before"):
        replace_block(f"{e}\n{s}\n", "x", "R.md")
    with pytest.raises(ReportError, match="exactly once"):
        replace_block(f"{s}\n{e}\n{s}\n{e}\n", "x", "R.md")
    assert replace_block(f"a\n{s}\nold\n{e}\nb\n", "new", "R.md") == f"a\n{s}\nnew\n{e}\nb\n"


def test_per_image_errors_and_row_choice():
    gt = pl.read_parquet(FIX / "prepared" / "keypoints.parquet")
    preds = {m: pl.read_parquet(FIX / "predictions" / f"{m}_val.parquet") for m in ("heatmap", "yolo")}
    errs = {m: per_image_errors(gt, p) for m, p in preds.items()}
    assert len(errs["heatmap"]) == 4 and all(math.isfinite(v) for v in errs["heatmap"].values())
    assert sum(math.isinf(v) for v in errs["yolo"].values()) == 1  # the image YOLO missed
    # The mean over each image's visible keypoints of the distance to the prediction.
    for image, err in errs["heatmap"].items():
        g = gt.filter((pl.col("image") == image) & (pl.col("visibility") > 0)).sort("keypoint")
        p = preds["heatmap"].filter(pl.col("image") == image).sort("keypoint")
        p = p.filter(pl.col("keypoint").is_in(g["keypoint"].implode()))
        d = np.hypot(
            p["x"].to_numpy().astype(np.float64) - g["x"].to_numpy(),
            p["y"].to_numpy().astype(np.float64) - g["y"].to_numpy(),
        )
        assert err == pytest.approx(d.mean(), rel=1e-12)
    rows = pick_qualitative(errs)
    labels = [label for label, _ in rows]
    assert labels[0] == "typical"
    finite = sorted(errs["heatmap"].items(), key=lambda kv: (kv[1], kv[0]))
    assert rows[0][1] == finite[(len(finite) - 1) // 2][0]  # the median image
    assert rows[1] == ("worst for the heatmap model", finite[-1][0])
    assert len({image for _, image in rows}) == len(rows)


def test_draw_skeleton():
    """The drawing the qualitative figure uses (handkp.viz.skeleton)."""
    rgb = np.zeros((224, 224, 3), np.uint8)
    kp = np.stack([np.linspace(20, 200, NUM_KEYPOINTS), np.linspace(30, 190, NUM_KEYPOINTS)], axis=1)
    out = draw_skeleton(rgb, kp, None, (255, 0, 0))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert rgb.max() == 0  # input untouched
    assert out[int(kp[0, 1]), int(kp[0, 0]), 0] > 100  # a keypoint is drawn in the colour
    scores = np.ones(NUM_KEYPOINTS)
    scores[0] = 0.1
    kp_nan = kp.copy()
    kp_nan[20] = np.nan
    out2 = draw_skeleton(rgb, kp_nan, scores, YOLO_COLOR, min_score=0.5)
    assert out2[int(kp[0, 1]), int(kp[0, 0])].max() == 0  # low score: skipped
    faint = draw_skeleton(rgb, kp, None, (255, 255, 255), alpha=0.5)
    assert 0 < faint.max() < 200
    with pytest.raises(ValueError):
        draw_skeleton(rgb, kp[:5], None, (255, 0, 0))


def test_dvclive_series_with_and_without_timestamp(tmp_path):
    m = tmp_path / "plots" / "metrics"
    (m / "train").mkdir(parents=True)
    (m / "train" / "loss.tsv").write_text("timestamp\tstep\tloss\n1\t0\t0.5\n2\t1\t0.25\n")
    (m / "lr.tsv").write_text("step\tlr\n0\t0.001\n1\t0.0005\n")
    series = read_dvclive_series(tmp_path)
    assert sorted(series) == ["lr", "train/loss"]
    steps, values = series["train/loss"]
    assert steps.tolist() == [0, 1] and values.tolist() == [0.5, 0.25]
    assert read_dvclive_series(tmp_path / "absent") == {}


def speed_fixture(tmp: Path, images: Path, default_ratio: float, ablation_train: dict | None = None) -> ReportPaths:
    """Speed rows where the default variant runs at ``default_ratio`` × YOLO, with ablation results
    (trained on ``ablation_train``, by default 4 epochs × 3,000 images)."""
    rows = {
        "seed_256": {
            "kind": "variant",
            "backbone_tail": "full",
            "head": "deconv",
            "deconv_layers": 3,
            "deconv_channels": 256,
            "params_m": 9.0,
            "macs_m": 1451.2,
            "e2e_p50_ms": 19.0,
            "e2e_p99_ms": 21.0,
            "e2e_p50_vs_yolo": 19.0 / 7.0,
        },
        "light_bilinear_96": {
            "kind": "variant",
            "backbone_tail": "light",
            "head": "bilinear_dw",
            "deconv_layers": 3,
            "deconv_channels": 96,
            "params_m": 2.86,
            "macs_m": 255.7,
            "e2e_p50_ms": 7.0 * default_ratio,
            "e2e_p99_ms": 9.0,
            "e2e_p50_vs_yolo": default_ratio,
        },
        "light_bilinear_stride8_128": {
            "kind": "variant",
            "backbone_tail": "light",
            "head": "bilinear_dw",
            "deconv_layers": 2,
            "deconv_channels": 128,
            "params_m": 2.86,
            "macs_m": 226.7,
            "e2e_p50_ms": 7.0 * default_ratio * 0.9,
            "e2e_p99_ms": 9.0,
            "e2e_p50_vs_yolo": default_ratio * 0.9,
        },
        "yolo": {"kind": "file", "e2e_p50_ms": 7.0, "e2e_p99_ms": 8.0, "e2e_p50_vs_yolo": 1.0},
    }
    (tmp / "speed.json").write_text(json.dumps({"device": "Test CPU", "threads": 2, "rows": rows}))
    ablation = {
        "seed_256": {"metrics": {"pck_1px": 0.20, "pck_3px": 0.60, "pck_5px": 0.80, "pck_10px": 0.90}},
        "light_bilinear_96": {"metrics": {"pck_1px": 0.25, "pck_3px": 0.61, "pck_5px": 0.79, "pck_10px": 0.91}},
        "light_bilinear_stride8_128": {
            "metrics": {"pck_1px": 0.15, "pck_3px": 0.55, "pck_5px": 0.79, "pck_10px": 0.93}
        },
    }
    for run in ablation.values():
        run["train"] = ablation_train or {"epochs": 4, "epoch_images": 3000}
    (tmp / "ablation.json").write_text(json.dumps(ablation))
    params = write_params(
        tmp, model={"backbone_tail": "light", "head": "bilinear_dw", "deconv_layers": 3, "deconv_channels": 96}
    )
    return make_paths(tmp, images, params=params, speed=tmp / "speed.json", ablation=tmp / "ablation.json")


@pytest.mark.parametrize("ratio,verdict", [(0.5, "meets"), (0.7, "misses")])
def test_speed_section_judges_the_default_against_yolo(tmp_path, image_cache, ratio, verdict):
    data = load_report_data(speed_fixture(tmp_path, image_cache, ratio))
    lines = "\n".join(speed_section(data))
    assert "`light_bilinear_96` (default)" in lines
    assert f"{ratio:.2f}× YOLO, which {verdict} the ≤ 0.6× target" in lines
    assert (
        "| `seed_256` | full | deconv | 3 | 256 | 9.0 | 1451.2 | 19.00 | 21.00 | 2.71 | 0.200 | 0.600 | 0.800 | 0.900 |"
        in lines
    )
    assert (
        "at least as accurate as the seed-shaped net (`seed_256`) at 1 px, 3 px, 10 px and less accurate at 5 px."
        in lines
    )
    assert (
        "`light_bilinear_stride8_128` against the default on the ablation's schedule: 0.90× its end-to-end time; "
        "at least as accurate at 5 px, 10 px, less accurate at 1 px, 3 px."
    ) in lines
    assert "`seed_256` against the default" not in lines  # it has its own line


def test_speed_section_says_the_ablations_schedule(tmp_path, image_cache):
    lines = "\n".join(speed_section(load_report_data(speed_fixture(tmp_path, image_cache, 0.5))))
    assert (
        "(`dvc exp run` per variant; all on one schedule, 4 epochs × 3,000 images, not the release schedule of the "
        "trained default (its rows compare the variants among themselves))."
    ) in lines
    train = load_params()["train"]
    same = speed_fixture(tmp_path, image_cache, 0.5, {k: train[k] for k in ("epochs", "epoch_images")})
    lines = "\n".join(speed_section(load_report_data(same)))
    per_epoch = "the whole train split" if not train["epoch_images"] else f"{train['epoch_images']:,} images"
    assert f"all on one schedule, {train['epochs']} epochs × {per_epoch}, the default's)." in lines


def runtime_speed_fixture(tmp: Path, images: Path) -> ReportPaths:
    """A speed.json of the speed stage on every CPU runtime (bf16 skipped), with the OpenVINO INT8
    metrics of both trained models; fp32 metrics are the fixture's."""

    def row(model, runtime, precision, e2e, **extra):
        return {
            "model": model,
            "runtime": runtime,
            "precision": precision,
            "kind": extra.pop("kind", "file"),
            "model_p50_ms": round(e2e * 0.9, 4),
            "e2e_p50_ms": e2e,
            "e2e_p99_ms": e2e + 1,
            "e2e_fps": round(1000 / e2e, 2),
            **extra,
        }

    arch = {
        "kind": "variant",
        "backbone_tail": "light",
        "width_mult": 0.75,
        "reduced_tail": True,
        "head": "bilinear_dense",
        "deconv_layers": 3,
        "deconv_channels": 32,
        "params_m": 1.5,
        "macs_m": 120.0,
    }
    times = {"w075": (3.0, 2.5, 2.8, 2.0), "default": (4.0, 4.4, 3.6, 2.4), "yolo": (6.0, 5.0, 5.5, 4.8)}
    runtimes = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    rows = {}
    for model, ts in times.items():
        for (runtime, precision), e2e in zip(runtimes, ts):
            extra = arch if model == "w075" else {}
            rows[f"{model}@{runtime}/{precision}"] = row(
                model,
                runtime,
                precision,
                e2e,
                **extra,
                e2e_p50_vs_yolo=round(e2e / times["yolo"][runtimes.index((runtime, precision))], 3),
            )
    best = {
        m: {
            "row": f"{m}@openvino/int8",
            "runtime": "openvino",
            "precision": "int8",
            **{k: rows[f"{m}@openvino/int8"][k] for k in ("model_p50_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_fps")},
        }
        for m in times
    }
    speed = {
        "device": "Test CPU",
        "threads": 2,
        "runtimes": [f"{r}/{p}" for r, p in runtimes[:3]] + ["openvino/bf16", "openvino/int8"],
        "skipped": [{"runtime": "openvino", "precision": "bf16", "reason": "this CPU has no bfloat16 support"}],
        "rows": rows,
        "best": best,
        "best_vs_best": {
            "model": "default",
            "reference": "yolo",
            "model_row": "default@openvino/int8",
            "reference_row": "yolo@openvino/int8",
            "e2e_p50_ratio": 0.5,
        },
    }
    (tmp / "speed.json").write_text(json.dumps(speed))
    for model, delta in (("heatmap", -0.004), ("yolo", -0.012)):
        fp32 = json.loads((FIX / "metrics" / f"{model}.json").read_text())
        (tmp / f"ov-{model}.json").write_text(json.dumps({**fp32, "pck_5px": fp32["pck_5px"] + delta}))
    return make_paths(tmp, images, speed=tmp / "speed.json", openvino_int8_metrics=str(tmp / "ov-{model}.json"))


def test_speed_section_shows_every_runtime_and_best_against_best(tmp_path, image_cache):
    data = load_report_data(runtime_speed_fixture(tmp_path, image_cache))
    lines = "\n".join(speed_section(data))
    fp32 = {m: json.loads((FIX / "metrics" / f"{m}.json").read_text()) for m in ("heatmap", "yolo")}
    # The ONNX Runtime fp32 table: torchvision's options shown in the backbone cell.
    assert (
        "| `w075` | light, ×0.75 width, reduced tail | bilinear_dense | 3 | 32 | 1.5 | 120.0 | 3.00 | 4.00 | 0.50 |"
        in lines
    )
    assert "| trained default, INT8 | – | – | – | – | – | – | 4.40 | 5.40 | 0.88 |" in lines
    # Every runtime, each model's fastest in bold; bf16 skipped with its reason.
    assert "| model | ONNX Runtime fp32 | ONNX Runtime INT8 | OpenVINO fp32 | OpenVINO INT8 |" in lines
    assert "| trained default | 4.00 | 4.40 | 3.60 | **2.40** |" in lines
    assert "| YOLO baseline | 6.00 | 5.00 | 5.50 | **4.80** |" in lines
    assert "- OpenVINO bf16 not measured: this CPU has no bfloat16 support.\n" in lines
    assert "\n\n\n" not in lines
    # Each trained model on its fastest runtime, with the PCK@5px of what runs there.
    assert "Each model on its fastest CPU runtime" in lines
    pck = {m: f"{fp32[m]['pck_5px'] + d:.3f}" for m, d in (("heatmap", -0.004), ("yolo", -0.012))}
    assert f"| trained default | OpenVINO INT8 | 2.16 | 2.40 | 3.40 | 416.7 | {pck['heatmap']} |" in lines
    assert f"| YOLO baseline | OpenVINO INT8 | 4.32 | 4.80 | 5.80 | 208.3 | {pck['yolo']} |" in lines
    assert (
        "- Best against best: the trained default on OpenVINO INT8 takes 2.40 ms end-to-end (p50) "
        "against YOLO's 4.80 ms on OpenVINO INT8: 0.50× YOLO, which meets the ≤ 0.6× target."
    ) in lines
    assert (
        f"PCK@5px change against fp32: trained default -0.004 ({pck['heatmap']} vs {fp32['heatmap']['pck_5px']:.3f}; "
        "end-to-end p50 2.40 ms vs 3.60 ms OpenVINO fp32); YOLO baseline -0.012"
    ) in lines
