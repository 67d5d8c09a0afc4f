"""The heatmap network: MobileNetV3-Large features + an upsampling head + a 1×1 conv to 21
heatmaps. Plain ``nn.Module``s built from the ``model`` section of params.yaml."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large

from ..core.errors import HandkpError
from ..core.keypoints import NUM_KEYPOINTS

HEADS = ("deconv", "dw_deconv", "bilinear_dw", "bilinear_dense")
TAILS = ("full", "light")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, of pixel values / 255
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsError(HandkpError):
    """ImageNet weights were asked for but could not be had."""


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class PixelStemConv(nn.Conv2d):
    """MobileNetV3's stem convolution on RGB pixel values 0–255 (float or uint8): the ImageNet
    normalisation ``(x / 255 - mean) / std`` is folded into its weights and a bias at every call,
    so an export holds one plain Conv (the folding is constant) and pre-processing is only a
    transpose and a cast. Its zero padding is black pixels. Same parameters as the Conv2d it
    replaces, so ImageNet weights load unchanged."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Constants of the input convention, not weights: kept out of the state dict.
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("pixel_scale", 1 / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255), persistent=False)

    @classmethod
    def like(cls, conv: nn.Conv2d) -> "PixelStemConv":
        """A PixelStemConv with ``conv``'s shape and hyper-parameters (fresh weights)."""
        return cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) pixels 0–255 -> (N, C, H', W') as the original conv on normalised input."""
        weight = self.weight * self.pixel_scale  # (C, 3, k, k): scaled per input channel
        bias = -(weight * self.pixel_mean).sum(dim=(1, 2, 3))  # (C,): the mean's contribution
        return nn.functional.conv2d(x.float(), weight, bias, self.stride, self.padding, self.dilation, self.groups)


def upsample_block(kind: str, in_ch: int, out_ch: int) -> nn.Sequential:
    """One ×2 upsampling step, (N, in_ch, H, W) -> (N, out_ch, 2H, 2W).

    deconv:      ConvTranspose2d 4×4 stride 2 + BN + ReLU (SimpleBaselines).
    dw_deconv:   depthwise ConvTranspose2d 4×4 stride 2 + BN + ReLU, pointwise 1×1 + BN + ReLU.
    bilinear_dw: bilinear ×2, depthwise 3×3 + BN + ReLU, pointwise 1×1 + BN + ReLU.
    bilinear_dense: bilinear ×2, dense 3×3 + BN + ReLU (one conv, which dense-conv hardware likes).
    """
    if kind == "deconv":
        return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False), *_bn_relu(out_ch))
    if kind == "dw_deconv":
        return nn.Sequential(
            nn.ConvTranspose2d(in_ch, in_ch, 4, stride=2, padding=1, groups=in_ch, bias=False),
            *_bn_relu(in_ch),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            *_bn_relu(out_ch),
        )
    if kind == "bilinear_dw":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
            *_bn_relu(in_ch),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            *_bn_relu(out_ch),
        )
    if kind == "bilinear_dense":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            *_bn_relu(out_ch),
        )
    raise ValueError(f"unknown model.head '{kind}', expected one of {HEADS}")


class HeatmapNet(nn.Module):
    """(N, 3, 224, 224) RGB pixel values 0–255 (float32 or uint8) -> (N, 21, S, S) heatmaps with
    S = 224 / 32 × 2^deconv_layers (3 layers: 56×56, stride 4; 2: 28×28, stride 8; 4: 112×112, stride 2).

    The stem convolution takes the pixels (``PixelStemConv``), so no runtime normalises images.
    ``width_mult`` and ``reduced_tail`` are torchvision's MobileNetV3-Large options (channel
    multiplier; halved channels in the last stage); ImageNet weights exist only for the defaults."""

    def __init__(
        self,
        deconv_layers: int = 3,
        deconv_channels: int = 256,
        head: str = "deconv",
        backbone_tail: str = "full",
        width_mult: float = 1.0,
        reduced_tail: bool = False,
    ):
        super().__init__()
        if backbone_tail not in TAILS:
            raise ValueError(f"unknown model.backbone_tail '{backbone_tail}', expected one of {TAILS}")
        features = mobilenet_v3_large(weights=None, width_mult=width_mult, reduced_tail=reduced_tail).features
        features[0][0] = PixelStemConv.like(features[0][0])
        for layer in features.modules():  # torchvision's 0.01 lags far behind a short or from-scratch training
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum = 0.1
        # "light" drops the final 1×1 expansion 160 -> 960 channels, the widest layer of the net.
        self.backbone = features if backbone_tail == "full" else features[:-1]
        channels = [m for m in self.backbone.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        blocks = []
        for _ in range(deconv_layers):
            blocks.append(upsample_block(head, channels, deconv_channels))
            channels = deconv_channels
        self.head = nn.Sequential(*blocks)
        self.final = nn.Conv2d(channels, NUM_KEYPOINTS, 1)
        self._init_head()

    def _init_head(self) -> None:
        for m in self.head.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.head(self.backbone(x)))


def load_backbone_weights(model: HeatmapNet, pretrained: str) -> None:
    """``pretrained``: ``none``, ``imagenet`` (torchvision's IMAGENET1K_V2, downloaded when
    there is internet) or a path to a torchvision MobileNetV3-Large state dict (.pth)."""
    if pretrained in ("none", "", None):
        return
    if pretrained == "imagenet":
        try:
            state = MobileNet_V3_Large_Weights.IMAGENET1K_V2.get_state_dict(progress=True)
        except (urllib.error.URLError, OSError) as err:
            raise PretrainedWeightsError(
                f"cannot download the ImageNet weights of MobileNetV3-Large ({err}). Without internet, "
                "set model.pretrained to a local .pth file of those weights, or to none for random initialisation."
            ) from err
    else:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(
                f"{path}: model.pretrained is neither none, imagenet nor an existing weights file"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    backbone = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    if not backbone:
        raise PretrainedWeightsError(
            f"{pretrained}: no 'features.*' tensors; expected a torchvision MobileNetV3-Large state dict"
        )
    missing, _ = model.backbone.load_state_dict(backbone, strict=False)
    if missing:
        raise PretrainedWeightsError(f"{pretrained}: backbone tensors missing from the weights: {missing[:3]}…")


def build_model(cfg: dict) -> HeatmapNet:
    """The network from the ``model`` section of params.yaml (without loading weights)."""
    return HeatmapNet(
        deconv_layers=int(cfg["deconv_layers"]),
        deconv_channels=int(cfg["deconv_channels"]),
        head=cfg.get("head", "deconv"),
        backbone_tail=cfg.get("backbone_tail", "full"),
        width_mult=float(cfg.get("width_mult", 1.0)),
        reduced_tail=bool(cfg.get("reduced_tail", False)),
    )
