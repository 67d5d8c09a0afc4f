"""One colour per model, everywhere (report figures, drawings, the live app); Okabe-Ito, colour-blind
safe. Plain "#rrggbb" strings: nothing here imports matplotlib or polars."""

HEATMAP_COLOR = "#0072B2"  # blue
YOLO_COLOR = "#D55E00"  # vermillion
MODEL_COLORS = {"heatmap": HEATMAP_COLOR, "yolo": YOLO_COLOR}
GROUND_TRUTH_COLOR = "#FFFFFF"
