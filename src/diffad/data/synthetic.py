"""The built-in demo: inspection-like images with exact defect masks, generated, never downloaded.

Two categories, written as an MVTec AD tree (so they go through the same importer as real data):

* ``fabric`` -- a plain-weave textile (warp over weft in a checkerboard of crossings) with mild
  per-image variation of thread phase, angle, colour, illumination gradient and thread slubs;
* ``washer`` -- a machined metal ring on a plain background, with small pose jitter, a soft
  shadow, a directional highlight, bevelled edges and concentric machining marks.

Defect kinds draw a shape (a binary region: the exact mask) and change only the pixels inside it:

============== =================================================================================
scratch        thin curved line, lighter or darker, opacity 0.3-0.65 (the faint ones are subtle)
hole           blob showing what lies behind (dark backing / the background through the ring)
stain          irregular blob, multiplicative brownish tint at opacity 0.3-0.7 (subtle to clear)
foreign_body   a fibre (thin curve) or particle (small blob) of an unrelated colour
crack          (washer) jagged dark line running outward from the inner edge
============== =================================================================================

Strokes are at least 2 px wide, so a 2x downscaled NEAREST mask never loses them.
Everything is vectorised NumPy on 128 x 128 float images in [0, 1]; each image has its own
generator seeded by (seed, category, split, defect, index), so the set is deterministic and any
single image can be rebuilt alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from diffad.core.errors import ConfigError
from diffad.data.settings import ConvertDatasetSettings

SIZE = 128  # side of the generated images; the default 64 px transform halves it
DEFECTS: dict[str, tuple[str, ...]] = {
    "fabric": ("scratch", "hole", "stain", "foreign_body"),
    "washer": ("scratch", "hole", "stain", "foreign_body", "crack"),
}
CATEGORIES = tuple(DEFECTS)


@dataclass(frozen=True)
class Scene:
    """A good image and what a defect needs to know about it."""

    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    behind: np.ndarray  # (H, W, 3) what a hole reveals
    depth: np.ndarray  # (H, W) distance (px) to the edge of the defect-bearing surface; <= 0 off it
    center: tuple[float, float]  # object centre (x, y), pixels


def _grid(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each (size, size) float32."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return x, y


def _gradient(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, amplitude: float) -> np.ndarray:
    """Illumination gain 1 + a * (linear ramp in a random direction), (H, W)."""
    phi = rng.uniform(0, 2 * np.pi)
    ramp = ((x - SIZE / 2) * np.cos(phi) + (y - SIZE / 2) * np.sin(phi)) / (SIZE / 2)
    return 1.0 + rng.uniform(0.0, amplitude) * ramp


def render_fabric(rng: np.random.Generator) -> Scene:
    """Plain weave: threads of period ~8 px, warp on top where (i + j) is even."""
    x, y = _grid()
    period, angle = rng.uniform(7.6, 8.4), rng.normal(0.0, 0.02)
    u = (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 2)  # across warp threads
    v = (-x * np.sin(angle) + y * np.cos(angle)) / period + rng.uniform(0, 2)  # across weft threads
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - iu, v - iv

    def profile(f: np.ndarray) -> np.ndarray:  # rounded thread cross-section, 0 in the gaps
        return np.sin(np.pi * f) ** 0.6

    def along(f: np.ndarray) -> np.ndarray:  # a thread darkens where it dips under its neighbour
        return 0.7 + 0.3 * np.sin(np.pi * f)

    slub = 1.0 + 0.05 * rng.standard_normal((2, 64))  # per-thread thickness/brightness wobble
    warp_on_top = (iu + iv) % 2 == 0
    warp = (profile(fu) * along(fv) * slub[0, iu % 64])[..., None]
    weft = (profile(fv) * along(fu) * slub[1, iv % 64])[..., None]
    warp_colour = np.array([0.30, 0.38, 0.62]) + rng.normal(0, 0.02, 3)
    weft_colour = np.array([0.72, 0.70, 0.66]) + rng.normal(0, 0.02, 3)
    gap = np.array([0.08, 0.08, 0.10])
    image = np.where(
        warp_on_top[..., None], gap + (warp_colour - gap) * warp, gap + (weft_colour - gap) * weft
    )
    image = image * (_gradient(rng, x, y, 0.08) * rng.uniform(0.94, 1.06))[..., None]
    image = image + rng.normal(0, 0.012, image.shape)
    behind = np.broadcast_to(gap * 0.6, image.shape)  # dark backing under the cloth
    depth = np.minimum(np.minimum(x, SIZE - x), np.minimum(y, SIZE - y)) - 4.0
    return Scene(_clip(image), np.asarray(behind, np.float32), depth, (SIZE / 2, SIZE / 2))


def render_washer(rng: np.random.Generator) -> Scene:
    """A flat metal ring (outer radius ~44 px, inner ~18 px) lit from a random side."""
    x, y = _grid()
    cx, cy = SIZE / 2 + rng.uniform(-3, 3, 2)
    r_out, r_in = 44.0 + rng.uniform(-1, 1), 18.0 + rng.uniform(-0.7, 0.7)
    light = rng.uniform(0, 2 * np.pi)
    r = np.hypot(x - cx, y - cy)
    theta = np.arctan2(y - cy, x - cx)

    # Background: plain grey-blue card, soft shadow of the ring away from the light.
    background = (np.array([0.20, 0.22, 0.25]) * rng.uniform(0.92, 1.08))[None, None, :]
    background = background * _gradient(rng, x, y, 0.10)[..., None]
    rs = np.hypot(x - cx + 3.0 * np.cos(light), y - cy + 3.0 * np.sin(light))
    shadow = np.clip((r_out + 2.0 - rs) / 4.0, 0, 1) * np.clip((rs - r_in + 2.0) / 4.0, 0, 1)
    background = background * (1.0 - 0.45 * shadow)[..., None]

    # Metal: directional highlight, bevelled edges, concentric machining marks.
    shade = 0.50 + 0.28 * np.cos(theta - light) ** 2 + 0.03 * np.sin(2 * np.pi * r / 1.7 + rng.uniform(0, 6))
    bevel = 1.0 - 0.35 * np.exp(-(r - r_in) / 1.5) - 0.35 * np.exp(-(r_out - r) / 1.5)
    steel = np.array([0.80, 0.81, 0.84]) + rng.normal(0, 0.015, 3)
    metal = steel * (shade * np.clip(bevel, 0, 1))[..., None]

    # Anti-aliased ring coverage: half a pixel of soft edge on both rims.
    cover = (np.clip(r_out - r + 0.5, 0, 1) * np.clip(r - r_in + 0.5, 0, 1))[..., None]
    image = background * (1 - cover) + metal * cover + rng.normal(0, 0.01, (SIZE, SIZE, 3))
    depth = np.minimum(r - r_in, r_out - r) - 2.0  # defects stay off the bevels
    return Scene(_clip(image), _clip(background), depth, (float(cx), float(cy)))


RENDER = {"fabric": render_fabric, "washer": render_washer}


# --- defect shapes: binary (H, W) regions ---------------------------------------------------


def _polyline_mask(points: np.ndarray, width: float, size: int = SIZE) -> np.ndarray:
    """Pixels whose centre lies within ``width / 2`` of the polyline through ``points`` (K, 2).

    Distances are computed only inside the polyline's bounding box (a few hundred pixels).
    """
    mask = np.zeros((size, size), bool)
    low = np.clip(np.floor(points.min(axis=0) - width), 0, size).astype(int)
    high = np.clip(np.ceil(points.max(axis=0) + width) + 1, 0, size).astype(int)
    if np.any(high <= low):
        return mask
    y, x = np.mgrid[low[1] : high[1], low[0] : high[0]] + 0.5
    a, b = points[:-1], points[1:]
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-9)
    px, py = x.reshape(-1, 1), y.reshape(-1, 1)
    t = np.clip(((px - a[:, 0]) * ab[:, 0] + (py - a[:, 1]) * ab[:, 1]) / length2, 0, 1)
    d2 = (px - a[:, 0] - t * ab[:, 0]) ** 2 + (py - a[:, 1] - t * ab[:, 1]) ** 2
    mask[low[1] : high[1], low[0] : high[0]] = (d2.min(axis=1) <= (width / 2) ** 2).reshape(x.shape)
    return mask


def _curve(rng: np.random.Generator, center: np.ndarray, length: float, width: float) -> np.ndarray:
    """A quadratic Bezier stroke of the given length and width through ``center``."""
    angle = rng.uniform(0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    p0, p2 = center - direction * length / 2, center + direction * length / 2
    p1 = center + normal * rng.uniform(-0.25, 0.25) * length
    t = np.linspace(0, 1, 25)[:, None]
    points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    return _polyline_mask(points, width)


def _blob(rng: np.random.Generator, center: np.ndarray, radius: float, wobble: float) -> np.ndarray:
    """An irregular disc: r(theta) = R (1 + sum_k a_k cos(k theta + phi_k)), k = 2..5."""
    x, y = _grid()
    theta = np.arctan2(y - center[1], x - center[0])
    k = np.arange(2, 6)[:, None, None]
    amplitude = (rng.uniform(0, wobble, 4) / np.arange(2, 6))[:, None, None]
    edge = radius * (1 + (amplitude * np.cos(k * theta + rng.uniform(0, 2 * np.pi, 4)[:, None, None])).sum(0))
    return np.hypot(x - center[0], y - center[1]) <= edge


def _crack(rng: np.random.Generator, scene: Scene, length: float) -> np.ndarray:
    """A jagged line from the ring's inner edge outward (a random walk around the radial)."""
    rim = np.argwhere((scene.depth > -2.0) & (scene.depth < -1.0))[:, ::-1] + 0.5  # (x, y) on both rims
    distance = np.hypot(rim[:, 0] - scene.center[0], rim[:, 1] - scene.center[1])
    inner = rim[distance < (distance.min() + distance.max()) / 2]
    start = inner[rng.integers(len(inner))]
    heading = np.arctan2(start[1] - scene.center[1], start[0] - scene.center[0])
    wander = np.cumsum(rng.normal(0, 0.45, int(length / 2)))
    steps = heading + 0.5 * np.clip(wander, -1.5, 1.5)  # jagged, but heading outward
    points = start + np.cumsum(2.0 * np.stack([np.cos(steps), np.sin(steps)], axis=1), axis=0)
    return _polyline_mask(np.vstack([start, points]), rng.uniform(2.0, 2.6))


def _blend(image: np.ndarray, region: np.ndarray, target: np.ndarray, opacity: float) -> np.ndarray:
    """image <- (1 - opacity) image + opacity target, inside ``region`` only."""
    out = image.copy()
    target = np.broadcast_to(target, image.shape)
    out[region] = (1 - opacity) * image[region] + opacity * target[region]
    return out


def add_defect(scene: Scene, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``defect`` on ``scene.image``; return (image (H, W, 3) float32, mask (H, W) bool).

    Pixels outside the mask are untouched; inside it every pixel changes.
    """
    image = scene.image
    for _ in range(20):  # redraw the rare shape that lands (almost) off the surface
        size = {"hole": rng.uniform(2.5, 6.0), "stain": rng.uniform(5.0, 11.0)}.get(defect, 3.0)
        # A hole must lie wholly on the surface; other shapes are clipped to it.
        candidates = np.argwhere(scene.depth > (size + 1.0 if defect == "hole" else 1.5))
        center = candidates[rng.integers(len(candidates))][::-1].astype(np.float64) + 0.5
        surface = scene.depth > 0
        if defect == "scratch":
            region = _curve(rng, center, rng.uniform(18, 45), rng.uniform(2.0, 3.0)) & surface
            shade = np.full(3, 0.95) if rng.random() < 0.6 else np.full(3, 0.08)
            out = _blend(image, region, shade, rng.uniform(0.3, 0.65))
        elif defect == "hole":
            region = _blob(rng, center, size, 0.3)
            out = _blend(image, region, scene.behind + rng.normal(0, 0.01, image.shape), 1.0)
        elif defect == "stain":
            region = _blob(rng, center, size, 0.6) & surface
            tint = image * (np.array([0.55, 0.42, 0.25]) + rng.normal(0, 0.03, 3))
            out = _blend(image, region, tint, rng.uniform(0.3, 0.7))
        elif defect == "foreign_body":
            colour = rng.choice(
                [[0.65, 0.12, 0.10], [0.05, 0.05, 0.05], [0.95, 0.92, 0.55], [0.15, 0.45, 0.2]]
            )
            if rng.random() < 0.5:  # a fibre
                region = _curve(rng, center, rng.uniform(8, 20), rng.uniform(2.0, 2.6))
            else:  # a particle
                region = _blob(rng, center, rng.uniform(1.8, 3.5), 0.4)
            out = _blend(image, region, np.asarray(colour), rng.uniform(0.85, 1.0))
        elif defect == "crack":
            region = _crack(rng, scene, rng.uniform(8, 20)) & (scene.depth > -2.0)
            out = _blend(image, region, np.full(3, 0.04), rng.uniform(0.6, 0.9))
        else:
            raise ValueError(f"unknown synthetic defect {defect!r}")
        if region.sum() >= 4:
            return out.astype(np.float32), region
    raise RuntimeError(f"could not place a {defect} defect")  # pragma: no cover - placement is generous


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 with rounding."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def image_rng(seed: int, category: str, split: str, defect: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of generation order."""
    names = (category, split, defect)
    codes = [int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") for name in names]
    return np.random.default_rng([seed % 2**63, *codes, index])


def make_image(
    category: str, split: str, defect: str, index: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One demo image: (uint8 (H, W, 3), bool mask (H, W)); ``defect="good"`` has an empty mask.

    ``defect="unknown"`` is a coin flip between good and a random defect kind.
    """
    rng = image_rng(seed, category, split, defect, index)
    scene = RENDER[category](rng)
    kind = defect
    if defect == "unknown":
        kind = "good" if rng.random() < 0.5 else str(rng.choice(DEFECTS[category]))
    if kind == "good":
        return to_uint8(scene.image), np.zeros(scene.depth.shape, bool)
    image, mask = add_defect(scene, kind, rng)
    return to_uint8(image), mask


def write_demo(category: str, convert: ConvertDatasetSettings, seed: int, root: Path) -> None:
    """Write demo ``category`` under ``root`` in the MVTec AD layout (PNG, 128 x 128)."""
    if category not in DEFECTS:
        raise ConfigError(
            f"data.category: {category!r} is not a synthetic demo category (choose {' | '.join(CATEGORIES)})"
        )
    plan = [("train", "good", convert.demo_train_good), ("test", "good", convert.demo_test_good)]
    plan += [("test", defect, convert.demo_test_per_defect) for defect in DEFECTS[category]]
    plan += [("test", "unknown", convert.demo_test_unknown)]
    for split, defect, count in plan:
        if count == 0:
            continue
        folder = root / split / defect
        folder.mkdir(parents=True, exist_ok=True)
        masks = root / "ground_truth" / defect
        for index in range(count):
            image, mask = make_image(category, split, defect, index, seed)
            # compress_level 1: the tree is temporary, speed matters more than size.
            Image.fromarray(image).save(folder / f"{index:03d}.png", compress_level=1)
            if defect not in ("good", "unknown"):
                masks.mkdir(parents=True, exist_ok=True)
                mask_png = Image.fromarray((mask * 255).astype(np.uint8))
                mask_png.save(masks / f"{index:03d}_mask.png", compress_level=1)
