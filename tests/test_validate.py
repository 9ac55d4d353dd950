"""Bad input: every problem is found before training, in one pass, each naming its file."""

from __future__ import annotations

import os
import sqlite3

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import compose_dataset, run_module
from segkit.core.errors import DataError
from segkit.data import build_index, load_index
from segkit.data.validate import validate_dataset
from tiny_datasets import (
    square_mask,
    write_dsb,
    write_folder,
    write_isbi_stacks,
    write_isic,
    write_voc,
)


def folder_cfg(root, *overrides: str):
    return compose_dataset(
        "folder", f"dataset.images={root / 'images'}", f"dataset.masks={root / 'masks'}", *overrides
    )


def problems_of(cfg, tmp_path) -> tuple[str, list[str]]:
    """The one-line error and the full list written next to it."""
    report = tmp_path / "problems.txt"
    with pytest.raises(DataError) as error:
        load_index(cfg, report_file=report)
    message = str(error.value)
    assert "\n" not in message
    return message, report.read_text().splitlines() if report.exists() else [message]


@pytest.mark.parametrize(
    ("name", "root"),
    [("isic", "nope"), ("dsb2018", "nope"), ("voc", "nope"), ("isbi", "nope")],
)
def test_missing_root_names_the_key(tmp_path, name, root):
    with pytest.raises(DataError, match=f"dataset.root={tmp_path / root}: folder not found"):
        build_index(compose_dataset(name, f"dataset.root={tmp_path / root}"))


def test_missing_folder_dataset_folder_names_the_key(tmp_path):
    write_folder(tmp_path, n=2)
    with pytest.raises(DataError, match=f"dataset.masks={tmp_path / 'labels'}: folder not found"):
        build_index(
            compose_dataset(
                "folder",
                f"dataset.images={tmp_path / 'images'}",
                f"dataset.masks={tmp_path / 'labels'}",
            )
        )


def test_all_problems_of_a_folder_dataset_in_one_pass(tmp_path):
    root = write_folder(tmp_path, n=12, mask_of=lambda i: square_mask(24, 32, value=1))
    images, masks = root / "images", root / "masks"
    (masks / "img000.png").unlink()  # image without mask
    Image.fromarray(square_mask(24, 32, value=1)).save(masks / "stray.png")  # mask, no image
    Image.fromarray(square_mask(20, 32, value=1)).save(masks / "img001.png")  # size mismatch
    data = (images / "img002.png").read_bytes()
    (images / "img002.png").write_bytes(data[: len(data) // 2])  # truncated
    (masks / "img003.png").write_bytes(b"not a png at all")  # unreadable
    Image.fromarray(square_mask(24, 32, value=7)).save(masks / "img004.png")  # class 7 of 5
    cfg = folder_cfg(root, "dataset.mask_format=index", "dataset.num_classes=5")
    message, problems = problems_of(cfg, tmp_path)
    assert message.startswith("6 problems found: ") and "(all listed in" in message
    expected = [
        ("img000.png", "no mask img000.* in"),
        ("stray.png", "no image stray.* in"),
        ("img001.png", "mask is 32x20 but image"),
        ("img002.png", "unreadable or truncated image"),
        ("img003.png", "unreadable or truncated mask"),
        ("img004.png", "invalid mask values 7 (expected 0..4 and 255)"),
    ]
    for file, what in expected:
        assert any(file in p and what in p for p in problems), (file, problems)


def test_binary_mask_with_128_and_an_empty_split(tmp_path):
    root = write_isic(tmp_path / "isic", n=6)
    mask_dir = root / "ISIC2018_Task1_Training_GroundTruth"
    cv2.imwrite(str(mask_dir / "ISIC_0000003_segmentation.png"), square_mask(24, 32, value=128))
    cfg = compose_dataset(
        "isic", f"dataset.root={root}", "dataset.split.val=0", "dataset.split.test=0"
    )
    message, problems = problems_of(cfg, tmp_path)
    assert "2 problems found" in message
    assert any("the val split of dataset 'isic' is empty (none)" in p for p in problems)
    assert any(
        "ISIC_0000003_segmentation.png: invalid mask values 128 (expected 0 and 1 or 255)" in p
        for p in problems
    )


def test_voc_missing_and_empty_split_files(tmp_path):
    voc = write_voc(tmp_path)
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "val.txt").unlink()
    with pytest.raises(DataError) as error:
        load_index(compose_dataset("voc", f"dataset.root={voc}"))
    assert f"{lists / 'val.txt'}: split file not found (dataset.val_list=val)" in str(error.value)
    (lists / "val.txt").write_text("")
    with pytest.raises(DataError, match="val.txt: the val split file lists no ids"):
        load_index(compose_dataset("voc", f"dataset.root={voc}"))
    (lists / "val.txt").write_text("2007_999999\n")
    with pytest.raises(DataError, match="2007_999999.jpg: listed image not found"):
        load_index(compose_dataset("voc", f"dataset.root={voc}"))


def test_dsb_sample_without_masks_and_mismatched_nucleus_mask(tmp_path):
    root = write_dsb(tmp_path, n=6)
    folders = sorted((root / "stage1_train").iterdir())
    for mask in (folders[0] / "masks").iterdir():
        mask.unlink()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folders[1] / "masks" / "small.png")
    message, problems = problems_of(compose_dataset("dsb2018", f"dataset.root={root}"), tmp_path)
    assert "2 problems" in message
    assert any(f"{folders[0].name}.png: no nucleus masks in" in p for p in problems)
    assert any("small.png: mask is 16x16 but image" in p for p in problems)


def test_isbi_stacks_with_different_page_counts(tmp_path):
    root = write_isbi_stacks(tmp_path, pages=6)
    write_isbi_stacks(tmp_path / "other", pages=5)
    os.replace(tmp_path / "other" / "train-labels.tif", root / "train-labels.tif")
    with pytest.raises(DataError, match="train-labels.tif: 5 pages but .*train-volume.tif has 6"):
        load_index(compose_dataset("isbi", f"dataset.root={root}"))


def test_quick_mode_reads_headers_and_file_ends_only(tmp_path):
    root = write_folder(tmp_path, n=6, image_ext=".jpg")
    Image.fromarray(square_mask(24, 32, value=128)).save(root / "masks" / "img000.png")
    data = (root / "images" / "img001.jpg").read_bytes()
    (root / "images" / "img001.jpg").write_bytes(data[:-200])
    message, problems = problems_of(folder_cfg(root, "dataset.validate=quick"), tmp_path)
    # The cut JPEG has no end marker; the 128 mask needs a full decode to be seen.
    assert message.startswith("1 problem found: ") and "img001.jpg: truncated file" in message
    message, problems = problems_of(folder_cfg(root), tmp_path)
    assert "2 problems" in message
    (root / "images" / "img001.jpg").write_bytes(data)
    index = build_index(folder_cfg(root, "dataset.validate=off"))
    validate_dataset(index, folder_cfg(root, "dataset.validate=off"))  # names only: passes


def test_successful_validation_is_remembered_until_a_file_changes(tmp_path):
    root = write_folder(tmp_path / "data", n=6)
    cfg = folder_cfg(root)
    cache = tmp_path / "cache"
    assert not load_index(cfg, cache)[1].cached
    assert load_index(cfg, cache)[1].cached
    Image.fromarray(square_mask(24, 32, value=128)).save(root / "masks" / "img002.png")
    with pytest.raises(DataError, match="img002.png: invalid mask values 128"):
        load_index(cfg, cache)


def test_bad_dataset_exits_2_with_one_line_and_no_mlflow_run(tmp_path):
    root = write_folder(tmp_path / "data", n=6)
    Image.fromarray(square_mask(24, 32, value=128)).save(root / "masks" / "img002.png")
    result = run_module(
        "segkit.train",
        "dataset=folder",
        f"dataset.images={root / 'images'}",
        f"dataset.masks={root / 'masks'}",
        "dataset.image_size=32",
        f"cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("segkit.train: error: 1 problem found: ")
    assert "img002.png: invalid mask values 128" in lines[0]
    db = tmp_path / "mlflow.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs").fetchone()[0] == 0
