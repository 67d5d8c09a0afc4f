"""The README's "What ships" section, from release/manifest.json (the release stage): each released
file with its sha256, size and val metrics recomputed from the file itself (the heatmap model's
also with the flip test), and the heatmap model's training run (epochs, images seen, hours,
images/s, hardware, commit)."""

from __future__ import annotations

from .data import ReportData
from .format import MISSING, fmt_count, fmt_pck, num, posix

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
    return "| " + " | ".join(cells) + " |"


def _training_line(training: dict, commit: str | None) -> str:
    hours, speed = num(training, "train_hours"), num(training, "images_per_s_median")
    line = (
        f"The heatmap model's training run: {fmt_count(num(training, 'epochs'))} epochs, "
        f"{fmt_count(num(training, 'images_seen'))} images seen in "
        f"{MISSING if hours is None else f'{hours:.1f}'} h on {training.get('hardware') or MISSING} "
        f"(median {MISSING if speed is None else f'{speed:.1f}'} images/s)"
    )
    if num(training, "best_epoch") is not None:
        best = fmt_count(num(training, "best_epoch"))
        line += f"; the released weights are the EMA weights of its best dev epoch, {best}"
    return line + (f"; released from commit `{commit[:7]}`." if commit else ".")


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
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|",
        _row(f"{folder}/{m.get('file', MISSING)}", "keypoint model", m),
    ]
    if m.get("val_flip_test"):
        lines.append(
            _row(
                f"{folder}/{m.get('file', MISSING)}",
                "keypoint model, flip test (`--flip-test`: 2 passes)",
                {**m, "val": m["val_flip_test"]},
            )
        )
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
    if detector:
        lines.append(
            "- The detector's row scores it as a one-hand keypoint model on the val crops; its missed images "
            "are those where it finds no hand. The live app runs it on the whole frame and the keypoint model "
            "on each hand's crop."
        )
    return lines
