"""The previous_release stage's scoring: the model of an earlier commit read from git (never the
working tree's file), with clear errors for a commit or a file that is not there; scored exactly as
the pipeline scores its own model (the release manifest's val rows, the robustness stage's
conditions, the multihand stage's runs), on the tiny fixture's pipeline run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from conftest import run

from handkp.core.io import sha256_file
from handkp.data.augment import CONDITIONS
from handkp.release.manifest import ReleaseError
from handkp.release.previous import model_at, score_previous_release


def committed(tmp_path, files: dict[str, bytes]) -> str:
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    run(["git", "init", "-q"], tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-qm", "a release"], tmp_path)
    return run(["git", "rev-parse", "HEAD"], tmp_path).stdout.strip()


def test_the_model_is_read_from_the_commit_not_the_working_tree(tmp_path, monkeypatch):
    sha = committed(tmp_path, {"release/heatmap.onnx": b"the released bytes"})
    (tmp_path / "release/heatmap.onnx").write_bytes(b"a newer model in the working tree")
    monkeypatch.chdir(tmp_path)
    assert model_at(sha[:7], "release/heatmap.onnx", tmp_path / "out.onnx") == sha
    assert (tmp_path / "out.onnx").read_bytes() == b"the released bytes"


def test_a_commit_or_a_file_that_is_not_there_is_named(tmp_path, monkeypatch):
    sha = committed(tmp_path, {"release/heatmap.onnx": b"x"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReleaseError, match="previous_release.commit: 0123456 is not a commit"):
        model_at("0123456", "release/heatmap.onnx", tmp_path / "out.onnx")
    with pytest.raises(ReleaseError, match=f"commit {sha[:12]} holds no file release/other.onnx"):
        model_at(sha, "release/other.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
    outside = tmp_path / "not-a-checkout"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git must not find tmp_path's repository
    with pytest.raises(ReleaseError, match="not a git checkout"):
        model_at(sha, "release/heatmap.onnx", outside / "out.onnx")


def test_no_commit_scores_nothing():
    assert score_previous_release({"previous_release": {"commit": None, "path": "release/heatmap.onnx"}}) == {
        "commit": None,
        "path": "release/heatmap.onnx",
    }


SCORE = """
import json, sys
from pathlib import Path
from handkp.core.config import load_params
from handkp.release.previous import score_model, score_previous_release
params = load_params()
if sys.argv[1] == "commit":
    params["previous_release"] = {"commit": "HEAD", "path": "release/heatmap.onnx"}
    print(json.dumps(score_previous_release(params)))
else:
    print(json.dumps(score_model(Path(sys.argv[1]), params)))
"""


def scored(pipeline_run, what: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCORE, what], cwd=pipeline_run, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def read(path):
    return json.loads(path.read_text())


def test_a_model_is_scored_as_the_pipeline_scores_its_own(pipeline_run):
    """The pipeline's own model through ``score_model``: the figures the release, robustness and
    multihand stages wrote for the same file (the multi-hand runs' FPS aside)."""
    record = scored(pipeline_run, "models/heatmap.onnx")
    manifest = read(pipeline_run / "release/manifest.json")
    for key in ("val", "val_flip_test", "val_refine"):
        assert record[key] == manifest[key], key
    robustness = read(pipeline_run / "reports/metrics/robustness.json")
    assert list(record["robustness"]) == list(CONDITIONS)
    assert record["robustness"] == robustness["models"]["heatmap"]
    assert record["presence"] == robustness["presence"]["heatmap"]
    multihand = read(pipeline_run / "reports/metrics/multihand.json")
    for run_name, theirs in (("detector", multihand), ("label_boxes", multihand["label_boxes"])):
        ours = record["multihand"][run_name]["overall"]
        assert ours["fps"] > 0 and {**ours, "fps": None} == {**theirs["overall"], "fps": None}, run_name


def test_the_previous_release_is_the_committed_file(pipeline_run):
    """The copy's commit holds the repository's released model; its working tree, the tiny run's."""
    record = scored(pipeline_run, "commit")
    committed_bytes = subprocess.run(
        ["git", "show", "HEAD:release/heatmap.onnx"], cwd=pipeline_run, capture_output=True, check=True
    ).stdout
    assert record["files"]["heatmap"] != sha256_file(pipeline_run / "release/heatmap.onnx")
    assert record["files"]["heatmap"] == hashlib.sha256(committed_bytes).hexdigest()
    assert record["files"]["detector"] == sha256_file(pipeline_run / "models/detector.onnx")
    assert len(record["commit"]) == 40 and record["val"]["n_images"] == 32
    assert set(record["multihand"]) == {"detector", "label_boxes"}
