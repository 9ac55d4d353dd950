"""Synthetic generation, the ISIC index, splits, and the tf.data pipeline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import dataset_node
from segkit.core.errors import ConfigError, DataError
from segkit.data import build_index
from segkit.data.formats.isic import TRAIN_IMAGES, TRAIN_MASKS, index_isic_folder
from segkit.data.formats.synthetic import dataset_dir, ensure_synthetic, make_sample
from segkit.data.index import Sample, pair_files
from segkit.data.pipeline import make_dataset
from segkit.data.splits import random_split


def split(val: float, test: float, seed: int):
    return OmegaConf.create({"val": val, "test": test, "seed": seed, "files": None})


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_synthetic_is_deterministic_written_once_and_in_isic_layout(tmp_path):
    a = ensure_synthetic(tmp_path / "a", 6, 3, 48, 64)
    b = ensure_synthetic(tmp_path / "b", 6, 3, 48, 64)
    assert digest(a) == digest(b)
    assert sorted(p.name for p in (a / TRAIN_IMAGES).iterdir())[0] == "ISIC_0000000.jpg"
    assert (a / TRAIN_MASKS / "ISIC_0000005_segmentation.png").is_file()
    stamp = (a / TRAIN_IMAGES / "ISIC_0000000.jpg").stat().st_mtime_ns
    assert ensure_synthetic(tmp_path / "a", 6, 3, 48, 64) == a
    assert (a / TRAIN_IMAGES / "ISIC_0000000.jpg").stat().st_mtime_ns == stamp  # not rewritten
    assert digest(ensure_synthetic(tmp_path / "a", 6, 4, 48, 64)) != digest(a)  # other seed


def test_incomplete_synthetic_folder_is_regenerated(tmp_path):
    folder = dataset_dir(tmp_path, 4, 0, 48, 64)
    (folder / TRAIN_IMAGES).mkdir(parents=True)  # as left by a crash: no manifest
    ensure_synthetic(tmp_path, 4, 0, 48, 64)
    assert len(list((folder / TRAIN_IMAGES).iterdir())) == 4


def test_synthetic_samples_vary_and_masks_are_binary():
    sizes, fractions = set(), []
    for i in range(20):
        image, mask = make_sample(0, i, 64, 96)
        assert image.dtype == np.uint8 and image.shape[:2] == mask.shape
        assert set(np.unique(mask)) <= {0, 255}
        sizes.add(image.shape[:2])
        fractions.append((mask > 0).mean())
    assert len(sizes) > 10
    assert 0.01 < np.mean(fractions) < 0.6 and np.std(fractions) > 0.02


def write_pair(images: Path, masks: Path, stem: str, suffix: str = "_segmentation") -> None:
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(images / f"{stem}.jpg"), np.full((20, 30, 3), 128, np.uint8))
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:20] = 255
    cv2.imwrite(str(masks / f"{stem}{suffix}.png"), mask)


def test_isic_index_uses_official_validation_folder_and_random_test(tmp_path):
    for i in range(10):
        write_pair(tmp_path / TRAIN_IMAGES, tmp_path / TRAIN_MASKS, f"ISIC_{i:07d}")
    for i in range(3):
        write_pair(
            tmp_path / "ISIC2018_Task1-2_Validation_Input",
            tmp_path / "ISIC2018_Task1_Validation_GroundTruth",
            f"ISIC_{100 + i:07d}",
        )
    (tmp_path / TRAIN_IMAGES / "LICENSE.txt").write_text("not an image")
    index = index_isic_folder(tmp_path, split(0.2, 0.2, 0))
    assert index.counts() == {"train": 8, "val": 3, "test": 2}
    assert index.origin["val"] == "official" and index.origin["test"].startswith("random")
    written = index.write_split_files(tmp_path / "splits")
    assert [p.name for p in written] == ["train.txt", "val.txt", "test.txt"]
    assert (tmp_path / "splits" / "val.txt").read_text().splitlines()[0] == "ISIC_0000100"


def test_isic_flat_images_masks_form(tmp_path):
    for i in range(4):
        write_pair(tmp_path / "images", tmp_path / "masks", f"ISIC_{i:07d}")
    assert sum(index_isic_folder(tmp_path, split(0.25, 0.25, 0)).counts().values()) == 4


def test_missing_masks_and_images_are_all_listed_by_file(tmp_path):
    write_pair(tmp_path / "images", tmp_path / "masks", "a")
    write_pair(tmp_path / "images", tmp_path / "masks", "b")
    (tmp_path / "masks" / "a_segmentation.png").unlink()
    write_pair(tmp_path / "other", tmp_path / "masks", "c")  # mask without an image
    samples, problems = pair_files(tmp_path / "images", tmp_path / "masks", "_segmentation")
    assert [s.id for s in samples] == ["b"]
    assert len(problems) == 2 and "a.jpg: no mask" in problems[0]
    assert "c_segmentation.png: no image" in problems[1]


def test_missing_root_and_unknown_dataset_name(tmp_path):
    with pytest.raises(DataError, match=f"dataset.root={tmp_path / 'nope'}: folder not found"):
        index_isic_folder(tmp_path / "nope", split(0.1, 0.1, 0))
    with pytest.raises(DataError, match="expected ISIC 2018 folders"):
        index_isic_folder(tmp_path, split(0.1, 0.1, 0))
    with pytest.raises(
        ConfigError, match="expected one of: dsb2018, folder, isbi, isic, synthetic"
    ):
        build_index(OmegaConf.create({"name": "coco"}))


def test_random_split_is_deterministic_disjoint_and_order_free():
    samples = [Sample(f"s{i:03d}", f"{i}.jpg", f"{i}.png") for i in range(50)]
    first = random_split(samples, 0.2, 0.1, seed=7)
    again = random_split(list(reversed(samples)), 0.2, 0.1, seed=7)
    assert first == again
    assert [len(first[k]) for k in ("train", "val", "test")] == [35, 10, 5]
    ids = [s.id for part in first.values() for s in part]
    assert sorted(ids) == sorted(s.id for s in samples)
    assert random_split(samples, 0.2, 0.1, seed=8)["val"] != first["val"]
    with pytest.raises(DataError, match="cannot be split"):
        random_split(samples[:2], 0.5, 0.5, seed=0)


def test_pipeline_batches_shapes_ranges_and_nearest_masks(cache_dir):
    folder = ensure_synthetic(cache_dir / "synthetic", 24, 0, 48, 72)
    index = index_isic_folder(folder, split(0.2, 0.2, 0))
    cfg = dataset_node(root=str(folder), image_size=32)
    ds = make_dataset(index.splits["train"], cfg, batch_size=4, training=True, seed=0)
    images, masks = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32, 1)
    assert images.dtype.name == "float32" and masks.dtype.name == "uint8"
    assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) <= 1.0
    assert set(np.unique(masks.numpy())) <= {0, 1}  # nearest neighbour: no blended values
    # Training drops the incomplete last batch; evaluation keeps every sample.
    train_batches = list(ds)
    assert all(b[0].shape[0] == 4 for b in train_batches)
    val = make_dataset(index.splits["val"], cfg, batch_size=4, training=False, seed=0)
    assert sum(int(b[0].shape[0]) for b in val) == len(index.splits["val"])


def test_pipeline_shuffle_is_reproducible_from_the_seed(cache_dir):
    folder = ensure_synthetic(cache_dir / "synthetic", 24, 0, 48, 72)
    samples = index_isic_folder(folder, split(0.2, 0.2, 0)).splits["train"]
    cfg = dataset_node(root=str(folder), image_size=32)

    def first_batch(seed):
        ds = make_dataset(samples, cfg, batch_size=4, training=True, seed=seed)
        return next(iter(ds))[0].numpy()

    np.testing.assert_array_equal(first_batch(1), first_batch(1))
    assert not np.array_equal(first_batch(1), first_batch(2))
