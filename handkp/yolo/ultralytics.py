"""Ultralytics without surprises.

Ultralytics reaches for the network in many places (fonts, the AMP check's weights, pip
auto-installs, analytics, integrations such as its own DVC logger). ``configure_ultralytics``
switches all of that off and must run before the first ``import ultralytics``; every function
of ``handkp.yolo`` that needs Ultralytics calls it and imports Ultralytics inside. Only
``yolo.pretrained: download`` touches the network, for the official weights, and says so clearly
when it cannot.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..core.device import resolve_device
from ..core.errors import HandkpError

PRETRAINED_CHOICES = "none | download | path to a .pt file"
# Ultralytics integrations that log elsewhere (its DVC one would write a second dvclive run).
_INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
_CONFIGURED = False


class YoloError(HandkpError):
    """A YOLO-baseline step that cannot go on; the message says why and what to do."""


def configure_ultralytics() -> None:
    """Environment for Ultralytics, set before its first import: settings in a private,
    temporary folder (not the user's; its integrations off), no pip auto-installs, and offline
    mode (no analytics, pip-update check, download retries). An explicit download
    (``resolve_pretrained('download')``) still tries once: offline mode only makes it fail fast."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    if "ultralytics" in sys.modules:  # too late for its environment: leave the user's settings alone
        print(
            "warning: ultralytics was imported before handkp.yolo.configure_ultralytics(); "
            "its settings, integrations and online checks are as the user configured them",
            file=sys.stderr,
        )
    else:
        config_dir = Path(tempfile.mkdtemp(prefix="handkp-ultralytics-config-"))
        atexit.register(shutil.rmtree, config_dir, True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)  # settings.json, fonts: not in the user's config
        os.environ["YOLO_AUTOINSTALL"] = "False"  # check_requirements never runs pip
        os.environ.pop("ULTRALYTICS_API_KEY", None)  # no streaming of the run to Ultralytics' platform
        os.environ["YOLO_OFFLINE"] = "1"  # is_online() False: no analytics, pip-update check, retries
        from ultralytics.utils import SETTINGS

        # the private settings file: no integration callbacks (its DVC one would start a second
        # dvclive run), no analytics sync
        SETTINGS.update({k: False for k in (*_INTEGRATIONS, "sync")})
    import ultralytics.data.utils as data_utils

    # check_det_dataset() always asks for Arial.ttf (a download): fonts only serve plots, which are off.
    data_utils.check_font = lambda *args, **kwargs: None
    _CONFIGURED = True


def model_config(model: str) -> str:
    """``yolo.model`` (an architecture such as yolo11n-pose, or a model .yaml) -> a model yaml name."""
    name = str(model).strip()
    if name.endswith(".pt"):
        raise YoloError(f"yolo.model = {name}: name an architecture (e.g. yolo11n-pose); weights go in yolo.pretrained")
    return name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"


def weights_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "handkp" / "ultralytics"


def resolve_pretrained(pretrained, model: str, cache_dir: Path | None = None) -> Path | None:
    """``yolo.pretrained`` -> the weights to start from, or None (random init).

    ``none``: built from the model yaml. ``download``: the official ``<model>.pt`` (kept in
    ``~/.cache/handkp/ultralytics/``); a clear error when it cannot be downloaded. Otherwise a
    local ``.pt`` file. Weights whose layers do not fit (e.g. the 17-keypoint COCO pose head)
    are skipped layer by layer by Ultralytics."""
    choice = str(pretrained).strip()
    if choice.lower() in ("none", "false", ""):
        return None
    stem = Path(model_config(model)).stem
    if choice.lower() == "download":
        cache_dir = Path(cache_dir or weights_cache_dir())
        target = cache_dir / f"{stem}.pt"
        if target.is_file():
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        from ultralytics.utils.downloads import attempt_download_asset

        err: Exception | None = None
        try:
            attempt_download_asset(target)
        except Exception as e:  # ConnectionError offline, HTTP errors, ...
            err = e
        if not target.is_file():
            raise YoloError(
                f"yolo.pretrained = download: cannot download the official {stem}.pt"
                f"{f' ({str(err).strip()})' if err else ' (not an Ultralytics release asset?)'}. "
                f"Without internet, get {stem}.pt elsewhere and set yolo.pretrained to its path (or put it at "
                f"{target}), or train from scratch with yolo.pretrained = none."
            )
        return target
    path = Path(choice).expanduser()
    if path.suffix != ".pt":
        raise YoloError(f"yolo.pretrained = {choice}: expected {PRETRAINED_CHOICES}")
    if not path.is_file():
        raise YoloError(f"yolo.pretrained = {choice}: {path} does not exist")
    return path


def ultralytics_device(device) -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``N`` -> Ultralytics' device string (``cpu`` or a GPU index)."""
    d = str(device).strip().lower()
    if d.isdigit():
        return d
    d = resolve_device(d)
    return "cpu" if d == "cpu" else "0" if d == "cuda" else d.removeprefix("cuda:")
