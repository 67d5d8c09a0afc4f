"""The README's "What ships" section, from release/manifest.json (the release stage): each released
file with its sha256, size and val metrics recomputed from the file itself (the heatmap model's
also with the flip test and the refine pass), and each model's training run (epochs, images seen,
hours, images/s, hardware, commit), the detector's box and pose mAP on val."""

from __future__ import annotations

from .data import ReportData
from .format import MISSING, fmt_count, fmt_ms, fmt_pck, num, posix, table_row, table_rule

RELEASE_PCK = (1, 3, 5, 7, 10)
SHA_SHOWN = 12  # leading hex digits of a sha256 in the table (the manifest has all 64)


def _row(path: str, role: str, entry: dict) -> str:
    val = entry.get("val") or {}
    size = num(entry, "bytes")
    cells = [
        f"`{path}`",
        role,
        f"`{str(entry.get('sha256', MISSING))[:SHA_SHOWN]}`",
        MISSING if size is None else f"{size / 1e6:.1f}",
    ]
    cells += [fmt_pck(num(val, f"pck_{t}px")) for t in RELEASE_PCK]
    cells += [fmt_pck(num(val, "auc_0_15px")), fmt_count(num(val, "missed_images"))]
    return table_row(cells)


def _training_line(training: dict, commit: str | None) -> str:
    hours, speed = num(training, "train_hours"), num(training, "images_per_s_median")
    line = (
        f"The heatmap model's training run: {fmt_count(num(training, 'epochs'))} epochs, "
        f"{fmt_count(num(training, 'images_seen'))} images seen in "
        f"{MISSING if hours is None else f'{hours:.1f}'} h on {training.get('hardware') or MISSING} "
        f"(median {MISSING if speed is None else f'{speed:.1f}'} images/s)"
    )
    total = num(training, "total_train_hours")
    if training.get("warm_start") and total is not None:
        line += (
            f", continued from `{training['warm_start'].get('path', MISSING)}`: "
            f"{total:.1f} h and {fmt_count(num(training, 'total_images_seen'))} images in all"
        )
    if num(training, "best_epoch") is not None:
        best = fmt_count(num(training, "best_epoch"))
        line += f"; the released weights are the EMA weights of its best dev epoch, {best}"
    return line + (f"; released from commit `{commit[:7]}`." if commit else ".")


def _detector_training_line(training: dict) -> str:
    hours, wall, speed = num(training, "train_hours"), num(training, "wall_hours"), num(training, "images_per_s_median")
    done, planned = fmt_count(num(training, "epochs")), fmt_count(num(training, "epochs_planned"))
    hardware = training.get("hardware")
    if isinstance(hardware, list):  # the YOLO record: one entry per machine the run ran on
        hardware = ", ".join(sorted({h.get("cpu") or h.get("device") or MISSING for h in hardware}))
    line = (
        f"The detector's training run (YOLO, Ultralytics {training.get('ultralytics') or MISSING}): "
        f"{done} of {planned} epochs, {fmt_count(num(training, 'images_seen'))} train images seen in "
        f"{MISSING if hours is None else f'{hours:.1f}'} h of training "
        f"({MISSING if wall is None else f'{wall:.1f}'} h with its per-epoch dev validation) on "
        f"{hardware or MISSING} (median {MISSING if speed is None else f'{speed:.1f}'} images/s)"
    )
    if num(training, "best_epoch") is not None:
        line += f"; the released weights are those of its best dev epoch, {fmt_count(num(training, 'best_epoch'))}"
    return line + ("." if training.get("finished") else "; the run has not finished.")


def _detector_map_line(val_map: dict) -> str:
    box, pose = val_map.get("box"), val_map.get("pose")
    return (
        f"The detector's weights on val by Ultralytics' own validator ({fmt_count(num(val_map, 'n_images'))} images "
        f"at {fmt_count(num(val_map, 'imgsz'))} px): box mAP50 {fmt_pck(num(box, 'map50'))}, "
        f"mAP50-95 {fmt_pck(num(box, 'map50_95'))} (precision {fmt_pck(num(box, 'precision'))}, "
        f"recall {fmt_pck(num(box, 'recall'))}); keypoints (OKS) mAP50 {fmt_pck(num(pose, 'map50'))}, "
        f"mAP50-95 {fmt_pck(num(pose, 'map50_95'))}."
    )


def _refine_latency(latency: dict | None) -> str:
    """The refine pass's end-to-end p50 against one pass's, as the benchmark stage measured them
    ("" where it did not)."""
    latency = latency or {}
    one, two = num(latency.get("heatmap"), "e2e_p50_ms"), num(latency.get("heatmap_refine"), "e2e_p50_ms")
    if one is None or two is None:
        return ""
    where = f"`{latency.get('target', MISSING)}` on `{latency.get('device', MISSING)}`"
    return f", end-to-end p50 {fmt_ms(two)} ms against {fmt_ms(one)} ms for one pass ({where}, the benchmark stage)"


def release_section(data: ReportData) -> list[str]:
    """The table of the released files (a line saying nothing is released yet where the manifest is missing)."""
    m = data.release
    if not m:
        return [
            f"Nothing released yet (`{posix(data.paths.release)}`): the release stage writes it when the release "
            "training run has ended."
        ]
    folder = posix(data.paths.release.parent)
    head = ["file", "role", "sha256", "MB"] + [f"PCK@{t}px" for t in RELEASE_PCK] + ["AUC 0–15px", "missed images"]
    lines = [
        f"What a fresh clone runs (quick start above). Each file is evaluated on val again from the released file "
        f"itself (ONNX Runtime); `{posix(data.paths.release)}` holds these figures with the params, the robustness "
        "and the multi-hand results.",
        "",
        table_row(head),
        table_rule(head, 3),
        _row(f"{folder}/{m.get('file', MISSING)}", "keypoint model", m),
    ]
    for key, role in (
        ("val_flip_test", "keypoint model, flip test (`--flip-test`: 2 passes)"),
        ("val_refine", "keypoint model, refine pass (`--refine`: 2 passes)"),
    ):
        if m.get(key):
            lines.append(_row(f"{folder}/{m.get('file', MISSING)}", role, {**m, "val": m[key]}))
    detector = m.get("detector")
    if detector:
        conf = num(detector.get("val"), "conf_threshold")
        role = "hand detector (the YOLO baseline" + ("" if conf is None else f", confidence ≥ {conf:g}") + ")"
        lines.append(_row(f"{folder}/{detector.get('file', MISSING)}", role, detector))
    lines.append("")
    if m.get("training"):
        lines.append(f"- {_training_line(m['training'], m.get('commit'))}")
    if m.get("val_flip_test"):
        lines.append(
            "- The flip test averages the heatmaps of each image and of its mirror image (MMPose's flip test): "
            "the same file, two network passes, so about twice its model-only latency in the latency tables."
        )
    if m.get("val_refine"):
        lines.append(
            "- The refine pass runs the model on the whole image, then again on the hand's crop placed from "
            "those keypoints and turned upright (MediaPipe's landmarks-to-ROI), as the live app does on still "
            f"images with `--refine`: two network passes{_refine_latency(data.latency)}."
        )
    if detector and detector.get("training"):
        lines.append(f"- {_detector_training_line(detector['training'])}")
    if detector and detector.get("val_map"):
        lines.append(f"- {_detector_map_line(detector['val_map'])}")
    if detector:
        lines.append(
            "- The detector's row scores it as a one-hand keypoint model on the val crops; its missed images "
            "are those where it finds no hand. The live app runs it on the whole frame and the keypoint model "
            "on each hand's crop."
        )
    return lines
