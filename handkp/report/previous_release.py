"""The README's comparison of the release with the one before: the model shipped at
``previous_release.commit`` scored with today's code (reports/metrics/previous_release.json, the
previous_release stage) beside the released file's own figures (release/manifest.json): val, the
robustness conditions, presence, and the multi-hand clips. A model is released only if it is
better; the summary names every figure where it is worse."""

from __future__ import annotations

from collections.abc import Iterator

from .data import ReportData
from .format import MISSING, fmt_count, fmt_pck, num, posix, table_row, table_rule

COMMIT_SHOWN = 7  # leading hex digits of a commit hash
# Each figure: (label, where it is in the previous record, where in the manifest, key, higher is better, count)
Figure = tuple[str, tuple[str, ...], tuple[str, ...], str, bool, bool]


def _figures(previous: dict) -> Iterator[Figure]:
    for t in (1, 3, 5, 10):
        yield f"val PCK@{t}px, one pass", ("val",), ("val",), f"pck_{t}px", True, False
    yield "val AUC 0–15px, one pass", ("val",), ("val",), "auc_0_15px", True, False
    yield "val PCK@5px, flip test", ("val_flip_test",), ("val_flip_test",), "pck_5px", True, False
    yield "val PCK@5px, refine pass", ("val_refine",), ("val_refine",), "pck_5px", True, False
    for condition in previous.get("robustness") or {}:
        robust = ("robustness", condition), ("robustness", "heatmap", condition)
        yield f"robustness PCK@5px, {condition.replace('_', ' ')}", *robust, "pck_5px", True, False
    presence = ("presence",), ("robustness", "presence")
    yield "presence AUROC, hands against hand-free images", *presence, "auroc", True, False
    for run, new_run, label in (("detector", "overall", "detector"), ("label_boxes", "label_boxes", "label boxes")):
        where = ("multihand", run, "overall"), ("multihand", new_run)
        yield f"several hands ({label}): hands missed", *where, "missed_rate", False, False
        if run == "detector":  # the labels' boxes find no hand that is not there
            yield f"several hands ({label}): false hands", *where, "false_hands", False, True
        yield f"several hands ({label}): ID switches", *where, "id_switches", False, True
        yield f"several hands ({label}): PCK@5px", *where, "pck_5px", True, False


def _at(record: dict, path: tuple[str, ...]) -> dict | None:
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record if isinstance(record, dict) else None


def _change(old: float | None, new: float | None, count: bool) -> str:
    if old is None or new is None:
        return MISSING
    if count:
        return f"{int(round(new - old)):+d}".replace("-", "−")
    return f"{new - old:+.3f}".replace("-", "−")


def _worse(old: float | None, new: float | None, higher_better: bool, count: bool) -> bool:
    """Worse as the table shows the two (counts whole, rates to 3 decimals): a tie is not worse."""
    if old is None or new is None:
        return False
    digits = 0 if count else 3
    old, new = round(old, digits), round(new, digits)
    return new < old if higher_better else new > old


def previous_release_section(data: ReportData) -> list[str]:
    """A summary line and the figures' table (folded), or one line saying why there is none."""
    previous, manifest = data.previous_release, data.release
    if not previous or not manifest:
        return []
    commit = previous.get("commit")
    if not commit:
        return ["- No earlier release to compare with (`previous_release.commit` is null)."]
    files = previous.get("files") or {}
    named = f"`{previous.get('path', MISSING)}` of commit `{commit[:COMMIT_SHOWN]}`"
    if files.get("heatmap") == manifest.get("sha256"):
        return [f"- The released model is {named} itself: nothing new to compare."]
    same_detector = files.get("detector") == (manifest.get("detector") or {}).get("sha256")
    rows, worse = [], []
    for label, old_at, new_at, key, higher_better, count in _figures(previous):
        if old_at[0] == "multihand" and not same_detector:
            continue
        old, new = num(_at(previous, old_at), key), num(_at(manifest, new_at), key)
        shown = fmt_count if count else fmt_pck
        rows.append(table_row([label, shown(old), shown(new), _change(old, new, count)]))
        if _worse(old, new, higher_better, count):
            worse.append(label)
    verdict = (
        f"worse on {len(worse)}: {'; '.join(worse)}"
        if worse
        else "worse on none (missed hands, false hands and ID switches: lower is better)"
    )
    lines = [
        f"- Against the release before ({named}, scored with today's code and data by the previous_release "
        f"stage, `{posix(data.paths.previous_release)}`): better or level on {len(rows) - len(worse)} of "
        f"{len(rows)} figures, {verdict}.",
    ]
    if not same_detector:
        lines.append(
            "- The several-hands figures are left out: the earlier release was run with another "
            "models/detector.onnx than the release's; run dvc repro previous_release."
        )
    head = ["figure", f"commit `{commit[:COMMIT_SHOWN]}`", "this release", "change"]
    return lines + [
        "",
        "<details><summary>The release against the one before, figure by figure</summary>",
        "",
        table_row(head),
        table_rule(head, 1),
        *rows,
        "",
        "</details>",
    ]
