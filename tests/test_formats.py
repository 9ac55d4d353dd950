"""Every dataset format, written tiny by the tests: indexing, decoding, mask values."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from helpers import compose_dataset
from segkit.core.errors import DataError
from segkit.data import build_index, load_index
from segkit.data.decode import decode_sample
from segkit.data.pipeline import make_dataset
from segkit.training.losses import LOSSES, SegmentationLoss
from segkit.training.metrics import confusion_matrix
from tiny_datasets import (
    VOC_BOUNDARY,
    VOC_PALETTE,
    dsb_union,
    isbi_label,
    rgb,
    square_mask,
    voc_mask,
    write_dsb,
    write_folder,
    write_isbi_pngs,
    write_isbi_stacks,
    write_isic,
    write_voc,
)


def by_id(index) -> dict:
    """Samples of every split by id."""
    return {s.id: s for s in index.samples()}


def all_batches(index, ds_cfg, split: str = "train", cache_dir=None):
    """Every (image, mask) of a split through the evaluation pipeline, as numpy."""
    ds = make_dataset(
        index.splits[split],
        ds_cfg,
        batch_size=4,
        training=False,
        seed=0,
        labels=index.labels,
        cache_dir=cache_dir,
    )
    images, masks = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(images), np.concatenate(masks)


def test_isic_folders_index_and_decode_to_binary_labels(tmp_path):
    root = write_isic(tmp_path, n=10)
    cfg = compose_dataset(
        "isic", f"dataset.root={root}", "dataset.split.val=0.2", "dataset.split.test=0.1"
    )
    index, report = load_index(cfg, tmp_path / "cache")
    assert index.counts() == {"train": 7, "val": 2, "test": 1}
    assert report.mode == "full" and not report.cached
    images, masks = all_batches(index, cfg, cache_dir=tmp_path / "cache")  # cache: disk
    assert images.shape == (7, 32, 32, 3) and masks.shape == (7, 32, 32, 1)
    assert set(np.unique(masks)) == {0, 1}
    # A second validation of unchanged files is skipped.
    assert load_index(cfg, tmp_path / "cache")[1].cached


def test_dsb_mask_is_the_union_of_overlapping_nuclei_and_instances_stay_reachable(tmp_path):
    root = write_dsb(tmp_path, n=6)
    cfg = compose_dataset("dsb2018", f"dataset.root={root}", "dataset.cache=none")
    index, _ = load_index(cfg)
    assert sum(index.counts().values()) == 6
    sample = index.samples()[0]
    assert sample.mask == "" and len(sample.instances) == 3
    assert all(p.endswith(".png") and "/masks/" in p for p in sample.instances)
    decoded = decode_sample(sample, index.labels, 3)
    np.testing.assert_array_equal(decoded.mask, dsb_union())
    assert decoded.image.shape == (32, 32, 3)  # RGBA read as RGB
    _, masks = all_batches(index, cfg)
    for mask in masks:  # 32 px: the pipeline keeps the exact union
        np.testing.assert_array_equal(mask[..., 0], dsb_union())
    # root may also be the stage1_train folder itself.
    assert build_index(compose_dataset("dsb2018", f"dataset.root={root / 'stage1_train'}")).counts()


def test_voc_palette_masks_read_as_indices_with_255_kept(tmp_path):
    root = write_voc(tmp_path, train=6, val=3)
    cfg = compose_dataset("voc", f"dataset.root={root}")
    index, _ = load_index(cfg)
    assert index.counts() == {"train": 6, "val": 3, "test": 0}
    assert index.origin["val"].startswith("official") and index.origin["val"].endswith("val.txt")
    for sample in index.splits["train"]:
        # The palette PNG holds indices, not colours (128, 0, 0 would be RGB for class 1).
        expected = voc_mask(int(sample.id[-6:]))
        np.testing.assert_array_equal(decode_sample(sample, index.labels, 3).mask, expected)
    _, masks = all_batches(index, cfg, "val")
    assert set(np.unique(masks)) <= {0, 1, 2, 3, 4, 255} and 255 in masks


def test_voc_ignore_label_reaches_loss_and_metrics_as_ignored(tmp_path):
    root = write_voc(tmp_path)
    cfg = compose_dataset("voc", f"dataset.root={root}")
    index = build_index(cfg)
    _, masks = all_batches(index, cfg)
    ignored = masks[..., 0] == 255
    assert ignored.any() and not ignored.all()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(21), size=masks.shape[:3]).astype("float32")
    changed = probs.copy()
    changed[ignored] = rng.dirichlet(np.ones(21), size=int(ignored.sum()))  # only ignored pixels
    for kind in LOSSES:
        loss = SegmentationLoss({kind: 1.0}, ignore_index=255)
        assert float(loss(masks, probs)) == pytest.approx(float(loss(masks, changed)), rel=1e-6)
    matrix = np.asarray(confusion_matrix(masks, probs, 21, ignore_index=255))
    assert matrix.sum() == (~ignored).sum()  # 255 pixels counted nowhere, not as background


@pytest.mark.parametrize("form", ["stacks", "pngs"])
def test_isbi_stack_and_png_forms_with_foreground_choice(tmp_path, form):
    root = write_isbi_stacks(tmp_path) if form == "stacks" else write_isbi_pngs(tmp_path)
    cfg = compose_dataset("isbi", f"dataset.root={root}")
    index, _ = load_index(cfg)
    assert sum(index.counts().values()) == 10
    sample = index.samples()[0]
    page = sample.page if form == "stacks" else int(sample.id)
    expected = isbi_label(page)
    decoded = decode_sample(sample, index.labels, 1)
    assert decoded.image.shape == (32, 32, 1)
    np.testing.assert_array_equal(decoded.mask, (expected == 0).astype(np.uint8))  # membrane = 1
    cell = build_index(compose_dataset("isbi", f"dataset.root={root}", "dataset.foreground=cell"))
    np.testing.assert_array_equal(
        decode_sample(sample, cell.labels, 1).mask, (expected == 255).astype(np.uint8)
    )
    images, masks = all_batches(index, cfg)
    assert images.shape[1:] == (32, 32, 1) and set(np.unique(masks)) == {0, 1}


def test_isbi_stack_pages_are_samples_of_both_stacks(tmp_path):
    root = write_isbi_stacks(tmp_path, pages=10)
    index = build_index(compose_dataset("isbi", f"dataset.root={root}", "dataset.split.test=0"))
    pages = sorted(s.page for s in index.samples())
    assert pages == list(range(10))
    assert all(s.image.endswith("train-volume.tif") for s in index.samples())
    assert all(s.mask.endswith("train-labels.tif") for s in index.samples())


@pytest.mark.parametrize(
    ("image_ext", "mask_ext", "suffix", "scale"),
    [
        (".png", ".png", "_mask", 1),  # 0/1 masks
        (".jpg", ".bmp", "", 255),  # 0/255 masks
        (".bmp", ".gif", "_m", 255),
        (".tif", ".tiff", "", 1),
    ],
)
def test_folder_formats_suffixes_and_binary_encodings(tmp_path, image_ext, mask_ext, suffix, scale):
    root = write_folder(
        tmp_path,
        n=8,
        suffix=suffix,
        image_ext=image_ext,
        mask_ext=mask_ext,
        mask_of=lambda i: square_mask(24, 32, value=scale, top=2 + i % 5),
    )
    cfg = compose_dataset(
        "folder",
        f"dataset.root={root}",
        "dataset.images=images",
        "dataset.masks=masks",
        f"dataset.mask_suffix={suffix}",
    )
    index, _ = load_index(cfg)
    assert sum(index.counts().values()) == 8
    decoded = decode_sample(by_id(index)["img000"], index.labels, 3)
    np.testing.assert_array_equal(decoded.mask, square_mask(24, 32, value=1, top=2))


def test_folder_index_masks_with_five_classes_and_ignore(tmp_path):
    def mask_of(i):
        mask = voc_mask(i)  # classes 1..4 and a 255 boundary
        mask[0, :] = 4
        return mask

    root = write_folder(tmp_path, mask_of=mask_of)
    cfg = compose_dataset(
        "folder",
        f"dataset.images={root / 'images'}",
        f"dataset.masks={root / 'masks'}",
        "dataset.mask_format=index",
        "dataset.num_classes=5",
    )
    index, _ = load_index(cfg)
    np.testing.assert_array_equal(
        decode_sample(by_id(index)["img000"], index.labels, 3).mask, mask_of(0)
    )


def test_folder_colour_masks_through_the_colour_table(tmp_path):
    colours = np.array(VOC_PALETTE + [VOC_BOUNDARY], np.uint8)
    lookup = np.zeros((256, 3), np.uint8)
    lookup[:5], lookup[255] = colours[:5], colours[5]
    root = write_folder(tmp_path, mask_of=lambda i: lookup[voc_mask(i)])
    table = "[" + ",".join(f"[{r},{g},{b}]" for r, g, b in VOC_PALETTE) + "]"
    cfg = compose_dataset(
        "folder",
        f"dataset.images={root / 'images'}",
        f"dataset.masks={root / 'masks'}",
        "dataset.mask_format=colour",
        "dataset.num_classes=5",
        f"dataset.colour_table={table}",
        "dataset.ignore_colour=[224,224,192]",
    )
    index, _ = load_index(cfg)
    for sample_id, sample in by_id(index).items():
        expected = voc_mask(int(sample_id[3:]))
        np.testing.assert_array_equal(decode_sample(sample, index.labels, 3).mask, expected)


def test_folder_ids_from_a_csv_file_instead_of_a_scan(tmp_path):
    root = write_folder(tmp_path / "data", n=8)
    ids_file = tmp_path / "ids.csv"
    with ids_file.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "note"])
        for i in (0, 2, 4, 6, 7):
            writer.writerow([f"img{i:03d}.png", "ok"])
    cfg = compose_dataset(
        "folder",
        f"dataset.root={root}",
        "dataset.images=images",
        "dataset.masks=masks",
        f"dataset.ids_file={ids_file}",
        "dataset.split.val=0.2",
        "dataset.split.test=0",
    )
    index, _ = load_index(cfg)
    assert sorted(s.id for s in index.samples()) == [f"img{i:03d}" for i in (0, 2, 4, 6, 7)]


def test_split_files_fix_every_split_and_unknown_ids_are_problems(tmp_path):
    root = write_isic(tmp_path / "isic", n=10)
    first = build_index(compose_dataset("isic", f"dataset.root={root}"))
    first.write_split_files(tmp_path / "splits")
    again = build_index(
        compose_dataset(
            "isic", f"dataset.root={root}", f"dataset.split.files={tmp_path / 'splits'}"
        )
    )
    assert again.splits == first.splits and not again.problems
    assert again.origin["val"] == f"file {tmp_path / 'splits' / 'val.txt'}"
    leaked = (tmp_path / "splits" / "train.txt").read_text().split()[0]
    with (tmp_path / "splits" / "val.txt").open("a") as f:
        f.write(f"ISIC_9999999\n{leaked}\n")
    cfg = compose_dataset(
        "isic", f"dataset.root={root}", f"dataset.split.files={tmp_path / 'splits'}"
    )
    with pytest.raises(DataError) as error:
        load_index(cfg)
    assert "val.txt: id ISIC_9999999 is not in the dataset" in str(error.value)
    assert f"sample {leaked} is in both the train and the val split" in str(error.value)


def test_split_is_deterministic_and_seed_dependent(tmp_path):
    root = write_dsb(tmp_path, n=6)
    ids = {
        seed: [
            s.id
            for s in build_index(
                compose_dataset("dsb2018", f"dataset.root={root}", f"dataset.split.seed={seed}")
            ).splits["val"]
        ]
        for seed in (0, 0, 1, 2)
    }
    again = build_index(compose_dataset("dsb2018", f"dataset.root={root}")).splits["val"]
    assert [s.id for s in again] == ids[0]
    assert ids[1] != ids[0] or ids[2] != ids[0]


def test_grayscale_saved_as_rgb_mask_reads_as_values_but_colour_mask_is_refused(tmp_path):
    root = write_folder(tmp_path, n=4)
    gray = square_mask(24, 32)
    Image.fromarray(np.dstack([gray] * 3)).save(root / "masks" / "img000.png")
    Image.fromarray(rgb(0)).save(root / "masks" / "img001.png")
    cfg = compose_dataset(
        "folder", f"dataset.root={root}", "dataset.images=images", "dataset.masks=masks"
    )
    index = build_index(cfg)
    samples = by_id(index)
    assert decode_sample(samples["img000"], index.labels, 3).mask.max() == 1
    with pytest.raises(DataError, match="img001.png: colour mask.*mask_format=colour"):
        decode_sample(samples["img001"], index.labels, 3)


def test_sixteen_bit_images_scale_to_eight_bits(tmp_path):
    import tifffile

    from segkit.data.decode import read_image

    ramp = (np.arange(24 * 32, dtype=np.uint32).reshape(24, 32) * 85).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", ramp)
    Image.fromarray(ramp).save(tmp_path / "a.png")
    for name in ("a.tif", "a.png"):
        image, size = read_image(str(tmp_path / name), None, 1)
        assert size == (24, 32) and image.dtype == np.uint8
        np.testing.assert_array_equal(image[..., 0], (ramp.astype(np.uint32) * 255 // 65535))


def test_voc_with_sbd_augmented_masks_and_train_aug_list(tmp_path):
    voc = write_voc(tmp_path, train=6, val=3)
    aug = voc / "SegmentationClassAug"
    aug.mkdir()
    ids = [f"2007_{i:06d}" for i in range(9)]
    for i, sample_id in enumerate(ids):  # SBD keeps class indices as plain grayscale PNGs
        Image.fromarray(voc_mask(i), "L").save(aug / f"{sample_id}.png")
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train_aug.txt").write_text("".join(f"{s}\n" for s in ids[:6]))
    cfg = compose_dataset(
        "voc", f"dataset.root={voc}", "dataset.use_sbd=true", "dataset.train_list=train_aug"
    )
    index, _ = load_index(cfg)
    assert index.counts() == {"train": 6, "val": 3, "test": 0}
    sample = by_id(index)["2007_000007"]
    assert "SegmentationClassAug" in sample.mask
    np.testing.assert_array_equal(decode_sample(sample, index.labels, 3).mask, voc_mask(7))
