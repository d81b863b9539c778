"""Real-photo benchmark categories in MVTec AD layout, cut from photographs that installed packages ship.

Nothing is downloaded: the photos come from scikit-image's data folder (``skimage.data``) and
scikit-learn's sample images. scikit-image's brick, grass and gravel and scikit-learn's digits are
left out on purpose: they are reserved for an independent check of what this benchmark tunes.

Categories (``CATEGORIES``):
    tissue   immunohistochemistry stain (skimage ihc.png), texture, masks
    moon     lunar surface (skimage moon.png, grey), texture, masks
    fundus   the vessels of a retina photo (skimage retina.jpg, inside the disc), texture, masks
    stars    Hubble deep field (skimage hubble_deep_field.jpg), texture, masks
    faces    one-class: LFW faces (skimage lfw_subset.npy) vs the non-face patches; no masks

Textures: every photo is split into two disjoint bands of rows, the top ``TRAIN_SHARE`` for
training crops, the rest for test crops, so no test pixel (good or defective) was ever seen in
training. Defects are painted on test crops: scratches, stains, holes and foreign patches (pieces
of *other* photos), each at several sizes; the mask marks the painted pixels exactly.

Deterministic: one seed per category, fixed photo files, PNG output; building twice gives
byte-identical folders.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CROP = 128  # side of every texture crop (pixels of the source photo after its scale)
TRAIN_SHARE = 0.6  # top share of a photo's rows that train crops come from
DEFECTS = ("scratch", "stain", "hole", "foreign")
RESERVED = ("brick.png", "grass.png", "gravel.png")  # never used here (independent check)


@dataclass(frozen=True)
class Texture:
    """A texture category: ``photo`` (file in skimage's data folder) at ``scale``, cropped to ``box``."""

    photo: str
    scale: float = 1.0
    box: tuple[int, int, int, int] | None = None  # (top, left, bottom, right) in source pixels
    n_train: int = 200
    n_test_good: int = 30
    n_per_defect: int = 10


TEXTURES: dict[str, Texture] = {
    "tissue": Texture("ihc.png"),
    "moon": Texture("moon.png"),
    # the inscribed square of the fundus disc, at half size: vessels on the orange background
    "fundus": Texture("retina.jpg", scale=0.5, box=(260, 260, 1150, 1150)),
    "stars": Texture("hubble_deep_field.jpg"),
}
ONE_CLASS = ("faces",)
CATEGORIES = (*TEXTURES, *ONE_CLASS)
# Foreign-patch donors: photos that are no category's source.
FOREIGN_SOURCES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")


def skimage_photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a photo in scikit-image's data folder (grey is replicated)."""
    import skimage.data

    if name in RESERVED:
        raise ValueError(f"{name} is reserved for the independent check")
    path = Path(skimage.data.__file__).parent / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: photo missing from the installed scikit-image")
    image = np.asarray(Image.open(path).convert("RGB"))
    return image


def load_texture(spec: Texture) -> np.ndarray:
    """The photo of a texture category as its crops are cut from it: (H, W, 3) uint8."""
    image = skimage_photo(spec.photo)
    if spec.box is not None:
        top, left, bottom, right = spec.box
        image = image[top:bottom, left:right]
    if spec.scale != 1.0:
        h, w = image.shape[:2]
        size = (round(w * spec.scale), round(h * spec.scale))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    return image


def split_rows(height: int) -> tuple[range, range]:
    """Row ranges where train and test crops may *start*, so their pixels never overlap."""
    boundary = int(height * TRAIN_SHARE)
    if boundary < CROP or height - boundary < CROP:
        raise ValueError(f"photo of height {height} too small for two bands of {CROP}-pixel crops")
    return range(0, boundary - CROP + 1), range(boundary, height - CROP + 1)


def _crops(image: np.ndarray, rows: range, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    width = image.shape[1]
    tops = rng.integers(rows.start, rows.stop, size=n)
    lefts = rng.integers(0, width - CROP + 1, size=n)
    return [image[t : t + CROP, left : left + CROP].copy() for t, left in zip(tops, lefts, strict=True)]


# --- defect painters: (crop uint8 (S, S, 3), rng, donors) -> (painted crop, bool mask) -------------


def _contrast_colour(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour far from the crop's mean brightness (dark on bright textures, bright on dark)."""
    mean = crop.mean() / 255
    base = rng.uniform(0.0, 0.2) if mean > 0.45 else rng.uniform(0.8, 1.0)
    tint = rng.uniform(-0.1, 0.1, size=3)
    return np.clip(base + tint, 0, 1) * 255


def _blend(crop: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(crop * (1 - a) + colour * a, 0, 255).astype(np.uint8)


def paint_scratch(crop, rng, donors):
    """A thin curved line, 2-6 px wide, 25-90 px long."""
    size = crop.shape[0]
    length = rng.uniform(25, 90)
    angle = rng.uniform(0, np.pi)
    centre = rng.uniform(0.3 * size, 0.7 * size, size=2)
    bend = rng.normal(0, 8)  # sideways bow of the middle, pixels
    t = np.linspace(-0.5, 0.5, 8)[:, None]
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    points = centre + t * length * direction + (1 - 4 * t**2) * bend * normal
    layer = Image.new("L", (size, size), 0)
    ImageDraw.Draw(layer).line(
        [tuple(p) for p in points], fill=255, width=int(rng.integers(2, 7)), joint="curve"
    )
    mask = np.asarray(layer) > 127
    return _blend(crop, mask * rng.uniform(0.75, 0.95), _contrast_colour(crop, rng)), mask


def _blob(size: int, radius: float, rng: np.random.Generator) -> Image.Image:
    """An irregular closed shape (random radial polygon) around a point away from the border."""
    centre = rng.uniform(radius + 4, size - radius - 4, size=2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=12))
    radii = radius * rng.uniform(0.6, 1.0, size=12)
    points = [
        (centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)
    ]
    layer = Image.new("L", (size, size), 0)
    ImageDraw.Draw(layer).polygon(points, fill=255)
    return layer


def paint_stain(crop, rng, donors):
    """A soft-edged discolouration, radius 8-26 px: a tint blended in at 45-70 %."""
    size = crop.shape[0]
    layer = _blob(size, rng.uniform(8, 26), rng)
    soft = np.asarray(layer.filter(ImageFilter.GaussianBlur(2.0)), np.float32) / 255
    soft[soft < 0.1] = 0  # the mask must hold every changed pixel: cut the blur's faint tail
    colour = np.array(rng.choice([[120, 70, 20], [40, 90, 30], [150, 20, 60], [20, 40, 120]]), np.float32)
    painted = _blend(crop, soft * rng.uniform(0.45, 0.7), colour)
    return painted, soft > 0


def paint_hole(crop, rng, donors):
    """A dark (or, on dark textures, bright) irregular hole, radius 5-16 px, with a little noise."""
    size = crop.shape[0]
    mask = np.asarray(_blob(size, rng.uniform(5, 16), rng)) > 127
    colour = _contrast_colour(crop, rng)
    noise = rng.normal(0, 8, size=crop.shape)
    painted = crop.astype(np.float32)
    painted[mask] = colour + noise[mask]
    return np.clip(painted, 0, 255).astype(np.uint8), mask


def paint_foreign(crop, rng, donors):
    """A piece of another photo, 14-44 px, rectangular or elliptical."""
    size = crop.shape[0]
    donor = donors[int(rng.integers(len(donors)))]
    side = int(rng.integers(14, 45))
    top = int(rng.integers(0, donor.shape[0] - side))
    left = int(rng.integers(0, donor.shape[1] - side))
    piece = donor[top : top + side, left : left + side]
    y, x = (int(v) for v in rng.integers(4, size - side - 4, size=2))
    layer = Image.new("L", (size, size), 0)
    box = (x, y, x + side - 1, y + side - 1)
    if rng.random() < 0.5:
        ImageDraw.Draw(layer).rectangle(box, fill=255)
    else:
        ImageDraw.Draw(layer).ellipse(box, fill=255)
    mask = np.asarray(layer) > 127
    painted = crop.copy()
    region = painted[y : y + side, x : x + side]
    local = mask[y : y + side, x : x + side]
    region[local] = piece[local]
    return painted, mask


PAINTERS: dict[str, Callable] = {
    "scratch": paint_scratch,
    "stain": paint_stain,
    "hole": paint_hole,
    "foreign": paint_foreign,
}


def _save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG", optimize=False)


def build_texture(name: str, out: Path, seed: int) -> dict:
    spec = TEXTURES[name]
    rng = np.random.default_rng(seed)
    image = load_texture(spec)
    train_rows, test_rows = split_rows(image.shape[0])
    donors = [skimage_photo(n) for n in FOREIGN_SOURCES]
    for i, crop in enumerate(_crops(image, train_rows, spec.n_train, rng)):
        _save(crop, out / "train" / "good" / f"{i:03d}.png")
    for i, crop in enumerate(_crops(image, test_rows, spec.n_test_good, rng)):
        _save(crop, out / "test" / "good" / f"{i:03d}.png")
    for defect in DEFECTS:
        for i, crop in enumerate(_crops(image, test_rows, spec.n_per_defect, rng)):
            painted, mask = PAINTERS[defect](crop, rng, donors)
            _save(painted, out / "test" / defect / f"{i:03d}.png")
            _save((mask * 255).astype(np.uint8), out / "ground_truth" / defect / f"{i:03d}_mask.png")
    return {
        "source": "mvtec",
        "photo": spec.photo,
        "train_rows": [train_rows.start, train_rows.stop - 1 + CROP],
        "test_rows": [test_rows.start, test_rows.stop - 1 + CROP],
        "n_train": spec.n_train,
        "n_test_good": spec.n_test_good,
        "n_test_defect": spec.n_per_defect * len(DEFECTS),
    }


def build_faces(out: Path, seed: int) -> dict:
    """LFW subset: 100 faces (rows 0-99) then 100 non-face patches (rows 100-199), 25x25 grey."""
    import skimage.data

    rng = np.random.default_rng(seed)
    data = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")
    faces, others = data[:100], data[100:]
    order = rng.permutation(100)
    train, test = order[:70], order[70:]
    nonface = rng.permutation(100)[:50]

    def to_rgb(a: np.ndarray) -> np.ndarray:
        grey = Image.fromarray((a * 255).round().astype(np.uint8)).resize((64, 64), Image.Resampling.BICUBIC)
        return np.repeat(np.asarray(grey)[..., None], 3, axis=2)

    for i in train:
        _save(to_rgb(faces[i]), out / "train" / "good" / f"{i:03d}.png")
    for i in test:
        _save(to_rgb(faces[i]), out / "test" / "good" / f"{i:03d}.png")
    for i in nonface:
        _save(to_rgb(others[i]), out / "test" / "nonface" / f"{i:03d}.png")
    return {
        "source": "folder",
        "photo": "lfw_subset.npy",
        "n_train": 70,
        "n_test_good": 30,
        "n_test_defect": 50,
    }


def build_category(name: str, out: Path, seed: int = 0) -> dict:
    """Write category ``name`` to ``out`` (must not exist or be empty) and its description to
    ``out.parent/<name>.json``; returns the description."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty; the builder writes into a fresh folder")
    category_seed = seed * 1000 + CATEGORIES.index(name)
    info = build_faces(out, category_seed) if name in ONE_CLASS else build_texture(name, out, category_seed)
    description = {"category": name, "seed": seed, **info}
    (out.parent / f"{name}.json").write_text(json.dumps(description, indent=2))
    return description


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write one sub-folder per category into")
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.categories:
        info = build_category(name, args.out / name, args.seed)
        print(name, info)


if __name__ == "__main__":
    main()
