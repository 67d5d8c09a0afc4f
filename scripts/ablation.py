"""Trains and evaluates the head variants named on the command line (from params.yaml's
`speed.variants`) on the current schedule through `dvc exp run`, then writes their val metrics
to reports/ablation/accuracy.json, which the report stage turns into the README's ablation table.

    python scripts/ablation.py light_bilinear_64 seed_256     # the default first: its run is cached
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.ablation import run_ablation  # noqa: E402
from handkp.config import load_params  # noqa: E402

if __name__ == "__main__":
    variants = load_params()["speed"]["variants"]
    unknown = [n for n in sys.argv[1:] if n not in variants]
    if unknown or len(sys.argv) < 2:
        sys.exit(f"usage: python scripts/ablation.py VARIANT...; variants in params.yaml speed.variants: {', '.join(variants)}"
                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    results = run_ablation({n: variants[n] for n in sys.argv[1:]}, Path("reports/ablation/accuracy.json"))
    for name, row in results.items():
        m = row["metrics"]
        print(f"{name:28s} PCK@1/3/5/10 {m['pck_1px']:.3f} {m['pck_3px']:.3f} {m['pck_5px']:.3f} {m['pck_10px']:.3f}")
