"""Tiny datasets written in each format segkit reads, exactly as the real ones are laid out.

Every writer returns the root to point ``dataset.root`` at. Images are small (24-40 px) so tests
decode them in milliseconds; masks hold known values so tests can check what decoding gives.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image

from segkit.data.formats.isic import MASK_SUFFIX, TRAIN_IMAGES, TRAIN_MASKS

# The PASCAL VOC colour map for the first classes, and the boundary colour of label 255.
VOC_PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]
VOC_BOUNDARY = (224, 224, 192)


def rgb(seed: int, height: int = 24, width: int = 32) -> np.ndarray:
    """A random RGB image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def square_mask(height: int, width: int, value: int = 255, top: int = 4, size: int = 10):
    """Zeros with a ``value`` square at (top, top)."""
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + size, top : top + size] = value
    return mask


def write_isic(root: Path, n: int = 8, height: int = 24, width: int = 32) -> Path:
    """ISIC 2018 Task 1 training folders: ISIC_x.jpg + ISIC_x_segmentation.png (0/255)."""
    (root / TRAIN_IMAGES).mkdir(parents=True, exist_ok=True)
    (root / TRAIN_MASKS).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"ISIC_{i:07d}"
        cv2.imwrite(str(root / TRAIN_IMAGES / f"{stem}.jpg"), rgb(i, height, width))
        mask = square_mask(height, width, top=2 + i % 5)
        cv2.imwrite(str(root / TRAIN_MASKS / f"{stem}{MASK_SUFFIX}.png"), mask)
    return root


def write_dsb(root: Path, n: int = 6) -> Path:
    """DSB 2018 stage1_train: RGBA images and one 0/255 mask per nucleus; nuclei 0 and 1 of
    every sample overlap by one column."""
    for i in range(n):
        sample_id = f"{i:04x}" * 16
        folder = root / "stage1_train" / sample_id
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        rgba = np.dstack([rgb(i, 32, 32), np.full((32, 32), 255, np.uint8)])
        Image.fromarray(rgba, "RGBA").save(folder / "images" / f"{sample_id}.png")
        for k, (top, left, size) in enumerate([(2, 2, 8), (2, 9, 8), (20, 20, 6)]):
            mask = np.zeros((32, 32), np.uint8)
            mask[top : top + size, left : left + size] = 255
            Image.fromarray(mask).save(folder / "masks" / f"nucleus{k}.png")
    return root


def dsb_union(height: int = 32, width: int = 32) -> np.ndarray:
    """The 0/1 semantic mask ``write_dsb`` samples have."""
    union = np.zeros((height, width), np.uint8)
    for top, left, size in [(2, 2, 8), (2, 9, 8), (20, 20, 6)]:
        union[top : top + size, left : left + size] = 1
    return union


def voc_mask(seed: int, height: int = 24, width: int = 32) -> np.ndarray:
    """Class indices 0..4 with a 255 boundary around a class block."""
    mask = np.zeros((height, width), np.uint8)
    cls = 1 + seed % 4
    mask[4:16, 6:20] = 255
    mask[5:15, 7:19] = cls
    return mask


def write_voc(root: Path, train: int = 6, val: int = 3) -> Path:
    """VOCdevkit/VOC2012 with palette PNG masks (255 = boundary) and the id lists."""
    voc = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    palette = [c for colour in VOC_PALETTE for c in colour] + [0] * (3 * (256 - len(VOC_PALETTE)))
    palette[255 * 3 : 256 * 3] = VOC_BOUNDARY
    ids = [f"2007_{i:06d}" for i in range(train + val)]
    for i, sample_id in enumerate(ids):
        cv2.imwrite(str(voc / "JPEGImages" / f"{sample_id}.jpg"), rgb(i))
        mask = Image.fromarray(voc_mask(i), "P")
        mask.putpalette(palette)
        mask.save(voc / "SegmentationClass" / f"{sample_id}.png")
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("".join(f"{s}\n" for s in ids[:train]))
    (lists / "val.txt").write_text("".join(f"{s}\n" for s in ids[train:]))
    (lists / "trainval.txt").write_text("".join(f"{s}\n" for s in ids))
    return voc


def isbi_label(page: int, size: int = 32) -> np.ndarray:
    """0 = membrane lines, 255 = cell interior."""
    label = np.full((size, size), 255, np.uint8)
    label[:, (page % 4) * 4 + 2] = 0
    label[(page % 3) * 5 + 3, :] = 0
    return label


def write_isbi_stacks(root: Path, pages: int = 10, size: int = 32) -> Path:
    """train-volume.tif and train-labels.tif: multi-page uint8 stacks."""
    root.mkdir(parents=True, exist_ok=True)
    volume = np.stack([rgb(p, size, size)[..., 0] for p in range(pages)])
    labels = np.stack([isbi_label(p, size) for p in range(pages)])
    tifffile.imwrite(root / "train-volume.tif", volume)
    tifffile.imwrite(root / "train-labels.tif", labels)
    return root


def write_isbi_pngs(root: Path, pages: int = 10, size: int = 32) -> Path:
    """train/image/N.png + train/label/N.png, as the UNet-keras seeds keep ISBI."""
    for folder in ("train/image", "train/label"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for p in range(pages):
        cv2.imwrite(str(root / "train" / "image" / f"{p}.png"), rgb(p, size, size)[..., 0])
        cv2.imwrite(str(root / "train" / "label" / f"{p}.png"), isbi_label(p, size))
    return root


def write_folder(
    root: Path,
    n: int = 8,
    suffix: str = "",
    image_ext: str = ".png",
    mask_ext: str = ".png",
    mask_of=None,
) -> Path:
    """images/<stem><image_ext> + masks/<stem><suffix><mask_ext>; ``mask_of(i)`` gives mask i
    (default: 0/255 squares)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"img{i:03d}"
        write_image(root / "images" / f"{stem}{image_ext}", rgb(i))
        mask = mask_of(i) if mask_of else square_mask(24, 32, top=2 + i % 5)
        write_image(root / "masks" / f"{stem}{suffix}{mask_ext}", mask)
    return root


def write_image(path: Path, array: np.ndarray) -> None:
    """Write an array in the format its extension names (TIFF through tifffile)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
