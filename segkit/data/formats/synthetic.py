"""The built-in synthetic dataset: textured blobs on a textured background crossed by hairs.

Written once, as real JPEG images and 0/255 PNG masks in the ISIC 2018 Task 1 folder layout, so the
default run reads files through exactly the code path a real dataset takes. Every sample is a pure
function of (seed, index): the same settings always give the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig

from segkit.core.errors import DataError
from segkit.data.formats.isic import TRAIN_IMAGES, TRAIN_MASKS, index_isic_folder
from segkit.data.index import DatasetIndex

FORMAT_VERSION = 1
# OpenCV parameters of the generated JPEGs.
JPEG_QUALITY = (cv2.IMWRITE_JPEG_QUALITY, 92)
MANIFEST = "MANIFEST.json"


def index_synthetic(cfg: DictConfig) -> DatasetIndex:
    """Generate the synthetic dataset under ``cfg.root`` if needed, then index it as ISIC."""
    folder = ensure_synthetic(cfg.root, cfg.num_samples, cfg.seed, cfg.min_side, cfg.max_side)
    return index_isic_folder(folder, cfg.split)


def dataset_dir(
    root: str | os.PathLike, num_samples: int, seed: int, min_side: int, max_side: int
) -> Path:
    """Folder that holds the dataset generated with these settings under ``root``."""
    name = f"v{FORMAT_VERSION}-n{num_samples}-seed{seed}-side{min_side}-{max_side}"
    return Path(root).expanduser() / name


def ensure_synthetic(
    root: str | os.PathLike, num_samples: int, seed: int, min_side: int, max_side: int
) -> Path:
    """Return the dataset folder, generating it first if it is missing or incomplete.

    Generation writes into a temporary sibling folder and renames it into place at the end, so an
    interrupted generation is redone and concurrent runs never see a half-written dataset. The
    settings are checked at composition (``SyntheticDatasetConfig.check``).
    """
    target = dataset_dir(root, num_samples, seed, min_side, max_side)
    if (target / MANIFEST).is_file():
        return target
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        _generate(tmp, target, num_samples, seed, min_side, max_side)
    except OSError as error:
        raise DataError(
            f"dataset.root={root}: cannot write the synthetic dataset there "
            f"({error.strerror or error}); free some space, or set cache_dir (or dataset.root) "
            "to a writable folder"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _generate(
    tmp: Path, target: Path, num_samples: int, seed: int, min_side: int, max_side: int
) -> None:
    """Write the dataset into ``tmp`` and rename it to ``target`` (see ``ensure_synthetic``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    (tmp / TRAIN_IMAGES).mkdir(parents=True)
    (tmp / TRAIN_MASKS).mkdir(parents=True)
    for i in range(num_samples):
        image, mask = make_sample(seed, i, min_side, max_side)
        stem = f"ISIC_{i:07d}"
        # OpenCV writes BGR; the generator works in RGB.
        _imwrite(tmp / TRAIN_IMAGES / f"{stem}.jpg", image[..., ::-1], JPEG_QUALITY)
        _imwrite(tmp / TRAIN_MASKS / f"{stem}_segmentation.png", mask)
    manifest = {
        "version": FORMAT_VERSION,
        "num_samples": num_samples,
        "seed": seed,
        "min_side": min_side,
        "max_side": max_side,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process finished the same dataset first, or an incomplete folder is in the
        # way: keep a complete one, replace an incomplete one.
        if (target / MANIFEST).is_file():
            return
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)


def _imwrite(path: Path, array: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """``cv2.imwrite``, raising where OpenCV only returns False (a full or read-only disk)."""
    if not cv2.imwrite(str(path), array, list(params)):
        raise OSError(f"OpenCV could not write {path.name}: is the disk full or read-only?")


def make_sample(
    seed: int, index: int, min_side: int, max_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Generate one RGB uint8 image and its 0/255 uint8 mask, deterministically."""
    rng = np.random.default_rng([seed, index])
    h, w = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
    image = _background(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        blob = _blob_mask(rng, h, w)
        colour = _blob_colour(rng)
        texture = _smooth_noise(rng, h, w, scale=4) * 40.0 + rng.normal(0, 10, (h, w))
        shaded = np.clip(colour[None, None, :] + texture[..., None], 0, 255)
        # Soft edge so the boundary is not a one-pixel step.
        alpha = cv2.GaussianBlur(blob.astype(np.float32), (5, 5), 1.2)[..., None]
        image = image * (1 - alpha) + shaded * alpha
        mask |= blob
    image = _hairs(rng, image)
    return np.clip(image, 0, 255).astype(np.uint8), mask * 255


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    """Zero-mean noise with features about ``h / scale`` pixels across, in [-1, 1]."""
    small = rng.uniform(-1, 1, (scale + 1, scale + 1)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Light, skin-like colour with uneven lighting and a fine striped texture."""
    base = np.array([rng.uniform(170, 240), rng.uniform(130, 200), rng.uniform(110, 180)])
    light = _smooth_noise(rng, h, w, scale=2) * 25.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 12)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) * 8.0
    grain = rng.normal(0, 6, (h, w))
    return base[None, None, :] + (light + stripes + grain)[..., None]


def _blob_colour(rng: np.random.Generator) -> np.ndarray:
    """Darker, browner and more varied than the background, overlapping it at the light end."""
    value = rng.uniform(50, 170)
    return np.array([value, value * rng.uniform(0.55, 0.9), value * rng.uniform(0.4, 0.8)])


def _blob_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A star-shaped blob with a wobbly outline, 6 % to 35 % of the shorter side in radius."""
    side = min(h, w)
    radius = rng.uniform(0.06, 0.35) * side
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = np.ones_like(angles)
    for k in range(2, 6):
        wobble += rng.uniform(0, 0.12) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    stretch = rng.uniform(0.6, 1.0)
    turn = rng.uniform(0, np.pi)
    dx, dy = radius * wobble * np.cos(angles), radius * wobble * stretch * np.sin(angles)
    xs = cx + dx * np.cos(turn) - dy * np.sin(turn)
    ys = cy + dx * np.sin(turn) + dy * np.cos(turn)
    blob = np.zeros((h, w), np.uint8)
    cv2.fillPoly(blob, [np.stack([xs, ys], 1).round().astype(np.int32)], 1)
    return blob


def _hairs(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Thin dark curves across the image: dark like the blobs, but never part of the mask."""
    h, w = image.shape[:2]
    out = np.ascontiguousarray(image, dtype=np.float32)
    for _ in range(int(rng.integers(0, 4))):
        points = rng.uniform(0, 1, (4, 2)) * [w, h]
        shade = float(rng.uniform(30, 90))
        cv2.polylines(
            out,
            [points.round().astype(np.int32)],
            False,
            (shade, shade * 0.8, shade * 0.7),
            int(rng.integers(1, 3)),
            cv2.LINE_AA,
        )
    return out
