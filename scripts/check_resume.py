"""Will `dvc repro train` continue the committed run? Compares the fingerprint of this checkout
(params, prepared data, training code) with the one of the run state at ``train.state_copy``.

    python scripts/check_resume.py      # after `dvc repro prepare`; exit status 0: it resumes
"""

import json
import sys
from pathlib import Path

import polars as pl

from handkp.core.config import load_params
from handkp.core.paths import PREPARED_TABLE
from handkp.data.dataset import split_arrays
from handkp.model.train_state import fingerprint


def main() -> int:
    params = load_params()
    copy = params["train"].get("state_copy")
    manifest = Path(copy).with_suffix(".json") if copy else None
    if manifest is None or not manifest.is_file():
        print(f"no run state at train.state_copy ({copy}): `dvc repro train` starts afresh")
        return 1
    saved = json.loads(manifest.read_text())
    table = pl.read_parquet(PREPARED_TABLE)
    here = fingerprint(params, [split_arrays(table, "train"), split_arrays(table, "dev")])
    if here != saved["fingerprint"]:
        print(
            f"{copy}: run {saved['fingerprint']}, this checkout {here}: params, data or the code training "
            "imports (handkp.model.train_state.training_sources) changed, so `dvc repro train` starts afresh"
        )
        return 1
    print(f"{copy}: epoch {saved['epochs_done']} of {saved['epochs']} done; `dvc repro train` continues from it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
