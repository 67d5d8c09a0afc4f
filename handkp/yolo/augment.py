"""The YOLO run's augmentation (``yolo.augment``) as Ultralytics train arguments.

Ultralytics' own pipeline stays: mosaic (several, smaller hands in one image), random scale
and translation, HSV colour jitter and the mirror (with the dataset's identity ``flip_idx``),
at Ultralytics' defaults unless ``yolo.augment`` names them (``degrees``, ``scale``,
``translate``, ``mosaic``, ``mixup``, ``fliplr``, ``hsv_h``, ``hsv_s``, ``hsv_v``,
``close_mosaic``). On top come the camera conditions of the heatmap run (``train.augment``):
low light, gamma, Gaussian blur, motion blur, sensor noise and JPEG artefacts, each a
probability with its range, as Albumentations pixel transforms through Ultralytics'
``augmentations`` argument (applied after the geometry, in a camera's order: scene light,
optics, sensor, compression). Occlusion is left out: Albumentations' dropout transforms are
spatial ones for Ultralytics, which would move the keypoints through its spatial path.
"""

from __future__ import annotations

from .ultralytics import YoloError

ULTRALYTICS_KEYS = (
    "degrees",
    "scale",
    "translate",
    "mosaic",
    "mixup",
    "fliplr",
    "hsv_h",
    "hsv_s",
    "hsv_v",
    "close_mosaic",
)
CONDITION_KEYS = (
    "low_light",
    "low_light_range",
    "gamma",
    "gamma_range",
    "blur",
    "blur_sigma",
    "motion_blur",
    "motion_blur_px",
    "noise",
    "noise_sigma",
    "jpeg",
    "jpeg_quality",
)


def _range(section: dict, key: str) -> tuple[float, float]:
    value = section[key]
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] <= value[1]):
        raise YoloError(f"yolo.augment.{key} = {value}: expected [low, high]")
    return float(value[0]), float(value[1])


def camera_conditions(section: dict) -> list:
    """The Albumentations transforms of the camera conditions in ``section`` (those with a
    probability above 0), in the order a camera applies them."""
    import albumentations as A

    def p(key: str) -> float:
        value = float(section.get(key, 0.0))
        if not 0.0 <= value <= 1.0:
            raise YoloError(f"yolo.augment.{key} = {value}: expected a probability in [0, 1]")
        return value

    built = {
        # brightness x a factor in low_light_range, the same for every pixel (as handkp.data.augment.dim)
        "low_light": lambda: A.MultiplicativeNoise(
            multiplier=_range(section, "low_light_range"), per_channel=False, elementwise=False, p=p("low_light")
        ),
        # Albumentations' gamma_limit is in percent
        "gamma": lambda: A.RandomGamma(
            gamma_limit=tuple(100 * g for g in _range(section, "gamma_range")), p=p("gamma")
        ),
        "blur": lambda: A.GaussianBlur(blur_limit=0, sigma_limit=_range(section, "blur_sigma"), p=p("blur")),
        "motion_blur": lambda: A.MotionBlur(
            blur_limit=tuple(int(v) for v in _range(section, "motion_blur_px")), p=p("motion_blur")
        ),
        # sigma in grey levels; Albumentations takes it as a fraction of 255 for uint8 images
        "noise": lambda: A.GaussNoise(std_range=tuple(v / 255 for v in _range(section, "noise_sigma")), p=p("noise")),
        "jpeg": lambda: A.ImageCompression(
            quality_range=tuple(int(v) for v in _range(section, "jpeg_quality")), p=p("jpeg")
        ),
    }
    return [make() for key, make in built.items() if p(key) > 0]


def ultralytics_augment(section: dict | None) -> dict:
    """``yolo.augment`` -> Ultralytics train arguments: its own keys as they are, and
    ``augmentations``: the camera conditions (``camera_conditions``); an unknown key is refused."""
    section = dict(section or {})
    unknown = sorted(set(section) - set(ULTRALYTICS_KEYS) - set(CONDITION_KEYS))
    if unknown:
        raise YoloError(
            f"yolo.augment: unknown keys {unknown} (Ultralytics': {list(ULTRALYTICS_KEYS)}; "
            f"camera conditions: {list(CONDITION_KEYS)})"
        )
    args = {key: section[key] for key in ULTRALYTICS_KEYS if key in section}
    conditions = camera_conditions(section)
    if conditions:
        args["augmentations"] = conditions
    return args
