"""The README's "Several hands in larger frames" section, from reports/metrics/multihand.json
(the multihand stage): the figures overall and per number of true hands in the frame, with the
YOLO detector, and overall with the labels' boxes in the detector's place; then the detector's
input sizes weighed (missed hands against FPS) and the tracker's presence threshold weighed on the
dev hands' clips (missed hands against false hands and ID switches)."""

from __future__ import annotations

from ..core.images import input_label
from .data import ReportData
from .format import MISSING, fmt_count, fmt_fps, fmt_pck, fmt_px, num, posix, table_row, table_rule

MULTIHAND_PCK = (1, 3, 5, 10)


def _rate(v: float | None) -> str:
    return MISSING if v is None else f"{v:.1%}"


def _missed(f: dict) -> str:
    """Missed hands and their share: ``12 (3.4%)``."""
    return f"{fmt_count(num(f, 'missed_hands'))} ({_rate(num(f, 'missed_rate'))})" if num(f, "hands") else MISSING


def _row(label: str, f: dict) -> str:
    cells = [label, fmt_count(num(f, "frames")), fmt_count(num(f, "hands"))]
    cells += [fmt_pck(num(f, f"pck_{t}px")) for t in MULTIHAND_PCK]
    cells += [
        fmt_px(num(f, "epe_median_px")),
        _missed(f),
        fmt_count(num(f, "false_hands")),
        fmt_count(num(f, "id_switches")),
        f"{fmt_count(num(f, 'hand_free_false_positive_frames'))} of {fmt_count(num(f, 'hand_free_frames'))}"
        if num(f, "hand_free_frames")
        else MISSING,
    ]
    return table_row(cells)


def multihand_section(data: ReportData) -> list[str]:
    """The table of the multihand stage (a line saying it has not run where its file is missing)."""
    mh = data.multihand
    if not mh or not mh.get("overall"):
        return [f"No multihand run yet (`{posix(data.paths.multihand)}`)."]
    s = mh.get("settings", {})
    size = s.get("frame_size") or [MISSING, MISSING]
    head = ["true hands in the frame", "frames", "hands"] + [f"PCK@{t}px" for t in MULTIHAND_PCK]
    head += ["EPE median px", "missed hands", "false hands", "ID switches", "hand-free frames with a hand"]
    smoothing = "on" if s.get("smoothing") else "off"
    crops = (
        "crops not turned" if s.get("upright") is False else "crops turned upright"
    )  # files from before the setting: turned
    lines = [
        f"{fmt_count(num(s, 'n_clips'))} synthetic clips of {fmt_count(num(s, 'frames'))} frames "
        f"at {size[0]}×{size[1]}: 0–{fmt_count(num(s, 'max_hands'))} val hands per clip, "
        "each scaled (0.4–1.2), turned and moving, entering and leaving, "
        f"through the YOLO detector (input {_input(s.get('detector_input'), s.get('detector_imgsz'))} px), the tracker "
        "and the heatmap model "
        f"(detector every {fmt_count(num(s, 'detect_every'))} frame(s) while places are free, presence threshold "
        f"{s.get('presence_threshold', MISSING)}, {crops}, smoothing {smoothing}). PCK in the source image's px "
        "(frame px / the hand's scale); a missed hand's keypoints count as misses; EPE over matched hands.",
        "",
        table_row(head),
        table_rule(head, 1),
        _row("all", mh["overall"]),
    ]
    by = mh.get("by_hands") or {}
    for n in sorted(by, key=lambda k: int(k)):
        lines.append(_row(n, by[n]))
    labels = (mh.get("label_boxes") or {}).get("overall")
    if labels:
        lines.append(_row("all, label boxes", labels))
    other = mh.get("label_boxes_other_orientation") or {}
    if other.get("overall"):
        turned = "crops turned upright" if other.get("upright") else "crops not turned"
        lines.append(_row(f"all, label boxes, {turned}", other["overall"]))
    lines += [
        "",
        f"End to end (detector, crops, model, tracker) {fmt_fps(num(mh['overall'], 'fps'))} FPS "
        f"on {fmt_count(num(s, 'threads'))} ONNX Runtime thread(s).",
    ]
    if labels:
        lines[-1] += (
            " *Label boxes*: the same clips with the labels' boxes (the true hands' keypoint extent × "
            f"{s.get('label_box_scale', MISSING)}) in the detector's place, as top-down pose evaluation "
            "scores with ground-truth boxes: the misses left are the tracker's and the keypoint model's, "
            "the rest of the first row's are the detector's."
        )
    in_use = (s.get("detector_imgsz"), s.get("detector_input"))
    sizes = _size_lines(mh.get("by_size") or {}, (mh.get("label_boxes") or {}).get("by_size") or {})
    presence = _presence_lines(mh.get("presence_sweep") or [], s.get("presence_threshold"))
    return lines + sizes + _sweep_lines(mh.get("detector_sweep") or [], in_use, s) + presence


def _size_lines(detector: dict, labels: dict) -> list[str]:
    """The hands by their size in the frame: missed and PCK@5 with the detector and with the label
    boxes (files from before ``by_size``: nothing)."""
    groups = list(dict.fromkeys([*detector, *labels]))
    if not groups:
        return []
    lines = [
        "",
        "The same hands by their size in the frame (the longer side of their visible keypoints' box): a hand "
        "far from the camera is a few dozen px, and the model sees its crop enlarged several times.",
        "",
        "| hand size px | hands | missed hands | PCK@5px | label boxes: missed hands | label boxes: PCK@5px |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group in groups:
        d, lb = detector.get(group) or {}, labels.get(group) or {}
        cells = [group, fmt_count(num(d, "hands") if d else num(lb, "hands"))]
        for f in (d, lb):
            cells += [_missed(f), fmt_pck(num(f, "pck_5px"))]
        lines.append(table_row(cells))
    return lines


def _input(height_width, side) -> str:
    """A detector input as the report shows it: ``416×320`` (width × height) or ``416`` when square;
    ``side`` for files from before the input's shape was recorded (square)."""
    if not height_width:
        return str(side if side is not None else MISSING)
    return input_label(tuple(height_width))


def _sweep_lines(sweep: list[dict], in_use: tuple, settings: dict) -> list[str]:
    """The detector's inputs on the same clips: missed hands and FPS, overall and with two hands,
    with the stage's tracker and with the live app's default; ``in_use``: (imgsz, [height, width]
    or None for files from before the input's shape was recorded); ``settings``: the stage's."""
    if not sweep:
        return []
    lines = [
        "",
        "The detector's input (width × height; each frame letterboxed to it), square and shaped for the frames "
        "(`detector.frame_size`), on the same clips; **bold**: the input in use (`detector.imgsz`, "
        f"`detector.frame_size`). Up to {fmt_count(num(settings, 'max_hands'))} hands tracked, the detector runs "
        f"every {fmt_count(num(settings, 'detect_every'))} frame(s) while fewer are, so in frames with 2 hands it "
        "keeps looking for another; the last two columns run the clips of 2 hands again with the live app's "
        f"default of up to {fmt_count(num(settings, 'app_default_max_hands'))} hands, where it rests while both "
        "are tracked.",
        "",
        "| detector input | missed hands | with 2 hands | false hands | PCK@5px | FPS | FPS with 2 hands "
        "| app default: missed, 2 hands | app default: FPS, 2 hands |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sweep:
        size = f"{_input(row.get('input'), row['imgsz'])} px"
        chosen = row.get("input") == in_use[1] if in_use[1] else row["imgsz"] == in_use[0]
        cells = [
            f"**{size}**" if chosen else size,
            _rate(num(row, "missed_rate")),
            _rate(num(row, "missed_rate_2_hands")),
            fmt_count(num(row, "false_hands")),
            fmt_pck(num(row, "pck_5px")),
            fmt_fps(num(row, "fps")),
            fmt_fps(num(row, "fps_2_hands")),
            _rate(num(row, "missed_rate_2_hands_app_default")),
            fmt_fps(num(row, "fps_2_hands_app_default")),
        ]
        lines.append(table_row(cells))
    return lines


def _presence_lines(sweep: list[dict], in_use: float | None) -> list[str]:
    """The tracker's presence thresholds on the dev hands' clips, with the label boxes and with the
    detector: missed hands, false hands, ID switches, PCK@5 (files from before the sweep: nothing);
    ``in_use``: the stage's threshold, in bold."""
    if not sweep:
        return []
    runs = {"label_boxes": "label boxes", "detector": "detector"}  # the sweep's key -> the column's name
    head = ["presence threshold"]
    for label in runs.values():
        head += [f"{label}: missed hands", "false hands", "ID switches", "PCK@5px"]
    lines = [
        "",
        "The tracker's presence threshold (a crop's hand counts when the model's presence reaches it) on clips "
        "made the same way from the **dev** hands, which the figures above never see; **bold**: the threshold "
        "in use (`multihand.presence_threshold`, chosen from this table). Lower keeps the far and blurred hands "
        "the model sees faintly, and follows what is not a hand longer.",
        "",
        table_row(head),
        table_rule(head, 0),
    ]
    for row in sweep:
        threshold = f"{row['presence_threshold']:g}"
        cells = [f"**{threshold}**" if row["presence_threshold"] == in_use else threshold]
        for f in (row.get(key) or {} for key in runs):
            cells += [
                _rate(num(f, "missed_rate")),
                fmt_count(num(f, "false_hands")),
                fmt_count(num(f, "id_switches")),
                fmt_pck(num(f, "pck_5px")),
            ]
        lines.append(table_row(cells))
    return lines
