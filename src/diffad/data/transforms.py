"""Image geometry from source size to the square prepared resolution, shared by images and masks.

``center-crop-dhariwal`` is ADM's (and EDM2 ``dataset_tool.py``'s) centre crop, step for step:

1. while the short side is >= 2 x ``resolution``: halve both sides (``size // 2``) with a BOX filter;
2. scale so the short side equals ``resolution``: ``round(side * resolution / short)``, BICUBIC;
3. crop ``resolution x resolution`` at offset ``((W' - r) // 2, (H' - r) // 2)``.

``resize`` is a plain BICUBIC resize to ``resolution x resolution`` (aspect ratio not kept).

Every PIL resize maps the whole source extent onto the whole destination extent, so the chain in
step 1-2 is one affine map from the source onto ``W' x H'``. Masks therefore take a single
NEAREST resize straight to ``W' x H'`` and the same crop: they stay binary and aligned.

:func:`to_model_input` is the one entry point from a raw file to model input, used by the
importer's output (through the prepared PNGs) and by ``diffad predict`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffad.core.errors import ConfigError
from diffad.data.images import read_image, to_rgb, upright
from diffad.data.settings import Transform

TRANSFORMS: tuple[str, ...] = ("center-crop-dhariwal", "resize")


@dataclass(frozen=True)
class Geometry:
    """How a ``source`` (W, H) image becomes ``resolution x resolution``.

    ``halvings`` are the BOX steps' output sizes, ``scaled`` the size after the final resize,
    ``crop`` the (left, top, right, bottom) box taken from ``scaled``.
    """

    source: tuple[int, int]
    halvings: tuple[tuple[int, int], ...]
    scaled: tuple[int, int]
    crop: tuple[int, int, int, int]


def plan_geometry(size: tuple[int, int], resolution: int, transform: Transform) -> Geometry:
    """The sizes and crop box for a (W, H) source; see the module docstring."""
    if transform not in TRANSFORMS:
        raise ConfigError(f"data.transform: {transform!r} is not one of {' | '.join(TRANSFORMS)}")
    if transform == "resize":
        return Geometry(size, (), (resolution, resolution), (0, 0, resolution, resolution))
    halvings = []
    current = size
    while min(current) >= 2 * resolution:
        current = (current[0] // 2, current[1] // 2)
        halvings.append(current)
    scale = resolution / min(current)
    scaled = (round(current[0] * scale), round(current[1] * scale))
    left, top = (scaled[0] - resolution) // 2, (scaled[1] - resolution) // 2
    return Geometry(size, tuple(halvings), scaled, (left, top, left + resolution, top + resolution))


def prepare_image(image: Image.Image, resolution: int, transform: Transform) -> Image.Image:
    """RGB (or any 8-bit mode) image -> ``resolution x resolution`` of the same mode."""
    geometry = plan_geometry(image.size, resolution, transform)
    for size in geometry.halvings:
        image = image.resize(size, resample=Image.Resampling.BOX)
    image = image.resize(geometry.scaled, resample=Image.Resampling.BICUBIC)
    return image.crop(geometry.crop)


def prepare_mask(mask: Image.Image, resolution: int, transform: Transform) -> Image.Image:
    """Binary ``L`` mask -> ``resolution x resolution``, same geometry as :func:`prepare_image`."""
    geometry = plan_geometry(mask.size, resolution, transform)
    return mask.resize(geometry.scaled, resample=Image.Resampling.NEAREST).crop(geometry.crop)


def to_tensor(pixels: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` or ``(N, H, W, 3)`` -> float32 ``(N, 3, H, W)`` in [-1, 1] (x / 127.5 - 1)."""
    array = np.asarray(pixels) if isinstance(pixels, np.ndarray) else np.stack(list(pixels))
    if array.ndim == 3:
        array = array[None]
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) pixels, got {array.dtype} {array.shape}")
    tensor = torch.from_numpy(np.array(array, order="C")).permute(0, 3, 1, 2)  # a writable copy
    return tensor.to(torch.float32) / 127.5 - 1.0


def to_model_input(image: str | Path | Image.Image, resolution: int, transform: Transform) -> torch.Tensor:
    """A raw file or PIL image -> float32 ``(1, 3, resolution, resolution)`` in [-1, 1].

    Exactly the preprocessing of ``convert_dataset`` (read, RGB, geometry, uint8), so a model sees
    the same pixels at prediction time as in training.
    """
    if isinstance(image, Image.Image):
        rgb = to_rgb(upright(image))  # a no-op for images already upright
    else:
        rgb = read_image(image)
    return to_tensor(np.asarray(prepare_image(rgb, resolution, transform)))
