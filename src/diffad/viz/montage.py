"""Montage of a method's worst mistakes: false positives (good images scored highest) and misses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAD = 4  # pixels between tiles and around the caption
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)


def select_mistakes(
    labels: np.ndarray, scores: np.ndarray, threshold: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` worst false positives and the ``k`` worst misses at ``threshold``.

    Args:
        labels: (N,) {0, 1}, 1 = anomalous.
        scores: (N,) image scores; predicted anomalous when ``score >= threshold``.

    Returns:
        ``(false_positives, misses)``: good images with score >= threshold, highest score first;
        anomalous images with score < threshold, lowest score first (each at most ``k``).
    """
    labels, scores = np.asarray(labels) == 1, np.asarray(scores, dtype=np.float64)
    fp = np.flatnonzero(~labels & (scores >= threshold))
    miss = np.flatnonzero(labels & (scores < threshold))
    fp = fp[np.argsort(-scores[fp], kind="stable")][:k]
    miss = miss[np.argsort(scores[miss], kind="stable")][:k]
    return fp, miss


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap of ``text`` to lines no wider than ``width`` pixels; over-long words are cut."""

    def fits(s: str) -> bool:
        return draw.textlength(s, font=font) <= width

    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if fits(candidate):
                line = candidate
                continue
            if line:
                lines.append(line)
            while not fits(word) and len(word) > 1:  # cut a word wider than the cell
                cut = max([1] + [i for i in range(2, len(word)) if fits(word[:i])])
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def mistake_montage(
    tiles: Sequence[tuple[np.ndarray, str]],
    columns: int,
    *,
    empty_text: str = "no mistakes",
    title: str = "",
) -> np.ndarray:
    """Grid of captioned tiles, row by row.

    Args:
        tiles: (image (h, w, 3) uint8, caption) pairs; tiles of different sizes are centred in a
            cell of the largest size. Captions wrap to the cell width (PIL's default font).
        columns: tiles per row (>= 1).
        empty_text: drawn on a small panel when ``tiles`` is empty.
        title: drawn above the grid, wrapped to its width (e.g. how many of all mistakes it shows).

    Returns:
        (H, W, 3) uint8 montage.
    """
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = int(np.ceil(font.getbbox("Ag")[3])) + 2
    if not tiles:
        panel = Image.new(
            "RGB", (int(probe.textlength(empty_text, font=font)) + 4 * PAD, line_height + 4 * PAD), BACKGROUND
        )
        ImageDraw.Draw(panel).text((2 * PAD, 2 * PAD), empty_text, fill=TEXT, font=font)
        return np.asarray(panel)
    for image, _ in tiles:
        if np.asarray(image).dtype != np.uint8 or np.asarray(image).ndim != 3:
            raise ValueError(f"montage tiles must be (h, w, 3) uint8, got {np.shape(image)}")
    cell_h = max(np.shape(img)[0] for img, _ in tiles)
    cell_w = max(np.shape(img)[1] for img, _ in tiles)
    captions = [_wrap(probe, caption, font, cell_w) for _, caption in tiles]
    caption_h = max(len(lines) for lines in captions) * line_height
    rows = -(-len(tiles) // columns)
    step_x, step_y = cell_w + PAD, cell_h + caption_h + 2 * PAD
    width = PAD + columns * step_x
    heading = _wrap(probe, title, font, width - 2 * PAD) if title else []
    top = len(heading) * line_height + (PAD if heading else 0)
    canvas = Image.new("RGB", (width, top + PAD + rows * step_y), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for j, line in enumerate(heading):
        draw.text((PAD, PAD + j * line_height), line, fill=TEXT, font=font)
    for i, ((image, _), lines) in enumerate(zip(tiles, captions, strict=True)):
        x0, y0 = PAD + (i % columns) * step_x, top + PAD + (i // columns) * step_y
        h, w = np.shape(image)[:2]
        canvas.paste(Image.fromarray(np.asarray(image)), (x0 + (cell_w - w) // 2, y0 + (cell_h - h) // 2))
        for j, line in enumerate(lines):
            draw.text((x0, y0 + cell_h + PAD + j * line_height), line, fill=TEXT, font=font)
    return np.asarray(canvas)
