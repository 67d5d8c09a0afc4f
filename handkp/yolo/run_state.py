"""The YOLO run between epochs, and where it is kept (the counterpart of ``handkp.model.train_state``).

Ultralytics keeps its run folder in ``models/yolo_checkpoint/``: ``weights/last.pt`` after
every epoch (EMA weights, optimiser, epoch, best fitness, its arguments and ``results.csv``'s
rows), ``weights/best.pt`` and ``results.csv``. Beside it the stage writes ``state.json``, the
run's record. After every epoch it copies what a new machine needs to ``yolo.state_copy``
(``release/yolo_run/``, committed to git once per session):

    last.pt      the run state after the last finished epoch (removed once the run has finished)
    best.pt      the best weights so far (Ultralytics' fitness on the dev slice), no optimiser
    state.json   the record: fingerprint, epoch k of N, the best epoch, images/s and dev figures of every epoch

``dvc repro yolo_train`` resumes from whichever of the two is further along and belongs to the
run (``fingerprint``); once the run has finished it writes ``models/yolo/best.pt`` from the
copy's ``best.pt`` without training.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

from ..core.io import atomic_path, sha256_file, write_json

STATE_FILE = "state.json"
LAST, BEST = "last.pt", "best.pt"
# Ultralytics train arguments that change where a run writes and how fast it goes, not what it computes.
OPERATIONAL_ARGS = frozenset(
    {"data", "project", "name", "exist_ok", "save_dir", "workers", "device", "cache", "plots", "verbose", "amp"}
)


def fingerprint(train_args: dict, data_files: list[Path]) -> str:
    """What a saved run must match to be resumed: the Ultralytics arguments that decide what it
    computes (``OPERATIONAL_ARGS`` left out; Albumentations transforms by their ``to_dict``) and
    the bytes of the data files it reads (the dataset yaml, its image lists, the dataset archive)."""
    args = {k: v for k, v in train_args.items() if k not in OPERATIONAL_ARGS}
    if args.get("augmentations"):
        import albumentations as A

        args["augmentations"] = [t if isinstance(t, dict) else A.to_dict(t) for t in args["augmentations"]]
    h = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode())
    for path in data_files:
        h.update(Path(path).name.encode())
        h.update(sha256_file(path).encode())
    return h.hexdigest()[:16]


def read_record(folder: Path | None) -> dict | None:
    """The run record (``state.json``) in ``folder``, or None when there is none or it is unreadable."""
    if folder is None or not (Path(folder) / STATE_FILE).is_file():
        return None
    try:
        return json.loads((Path(folder) / STATE_FILE).read_text())
    except (OSError, ValueError) as err:
        print(f"{Path(folder) / STATE_FILE}: unreadable run record ({err}): not resumed from it")
        return None


def resumable(folder: Path | None, weights: Path | None, fp: str) -> dict | None:
    """The record in ``folder`` when it belongs to the run ``fp`` and its files are there
    (in the folder ``weights``: the run state, unless the run has finished, when ``best.pt`` is enough)."""
    record = read_record(folder)
    if record is None:
        return None
    if record.get("fingerprint") != fp:
        print(
            f"{folder}: a run of other params or data ({record.get('fingerprint')}, this one {fp}): not resumed from it"
        )
        return None
    needed = Path(weights) / (BEST if record.get("finished") else LAST) if weights is not None else None
    if needed is None or not needed.is_file():
        print(f"{folder}: {needed} is missing: not resumed from it")
        return None
    return record


def copy_file(src: Path, dst: Path) -> None:
    """``src`` to ``dst``, atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def write_record(folder: Path, record: dict) -> None:
    write_json(
        Path(folder) / STATE_FILE,
        {**record, "commit": _commit(), "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    )


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None
