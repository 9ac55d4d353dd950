"""The tf.data pipeline: resize policies, augmentation reproducibility, epochs, caching."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import dataset_node
from segkit.data import build_index
from segkit.data import labels as label_maps
from segkit.data.augment import AUGMENTS, SeededTransform, element_seed
from segkit.data.decode import decode_sample
from segkit.data.index import Sample
from segkit.data.loader import SampleLoader
from segkit.data.pipeline import make_dataset
from tiny_datasets import square_mask, write_folder, write_isic

STANDARD = {
    "name": "standard",
    "horizontal": 0.5,
    "vertical": 0.5,
    "rotate90": 0.0,
    "affine": 1.0,
    "scale": [0.8, 1.2],
    "rotate": 30.0,
    "translate": 0.1,
    "colour": 0.8,
    "brightness": 0.2,
    "contrast": 0.2,
    "saturation": 0.2,
    "hue": 0.02,
}


@pytest.fixture(scope="module")
def isic(tmp_path_factory):
    """A 12-sample ISIC folder of 24x32 images and its index (no val/test)."""
    root = write_isic(tmp_path_factory.mktemp("isic"), n=12)
    cfg = dataset_node(root=str(root), image_size=32, split={"val": 0.0, "test": 0.0})
    return cfg, build_index(cfg)


def batches(samples, cfg, count, **kwargs):
    ds = make_dataset(samples, cfg, batch_size=4, training=True, **kwargs)
    return [(x.numpy(), y.numpy()) for x, y in ds.take(count)]


def test_same_seed_same_augmented_batches_other_seed_other_batches(isic):
    cfg, index = isic
    augment = OmegaConf.create(STANDARD)
    train = index.splits["train"]
    first = batches(train, cfg, 6, seed=3, augment=augment, epochs=2)
    again = batches(train, cfg, 6, seed=3, augment=augment, epochs=2)
    assert len(first) == 6  # 12 samples, batches of 4: 3 per epoch, 2 epochs
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = batches(train, cfg, 6, seed=4, augment=augment, epochs=2)
    assert not np.array_equal(first[0][0], other[0][0])
    # Epoch 2 is shuffled and augmented afresh.
    assert not np.array_equal(first[0][0], first[3][0])
    # The affine transform pads masks with the ignore label, never with a class.
    masks = np.concatenate([y for _, y in first])
    assert set(np.unique(masks)) <= {0, 1, 255} and (masks == 255).any()


def test_training_stream_holds_whole_batches_of_every_epoch(isic):
    cfg, index = isic
    train = index.splits["train"]
    ds = make_dataset(train[:10], cfg, batch_size=4, training=True, seed=0, epochs=3)
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sizes == [4, 4] * 3  # 10 samples: two whole batches per epoch
    small = make_dataset(train[:3], cfg, batch_size=8, training=True, seed=0, epochs=2)
    assert [int(x.shape[0]) for x, _ in small] == [3, 3]  # split smaller than a batch
    limited = make_dataset(
        train, cfg, batch_size=4, training=True, seed=0, epochs=2, limit_batches=1
    )
    assert len(list(limited)) == 2


def test_letterbox_pads_images_with_pad_value_and_masks_with_ignore(isic):
    cfg, index = isic
    cfg = OmegaConf.merge(cfg, {"resize": "letterbox", "pad_value": 7})
    ds = make_dataset(index.splits["train"][:4], cfg, batch_size=4, training=False, seed=0)
    images, masks = (t.numpy() for t in next(iter(ds)))
    # 24x32 -> 24x32 inside 32x32: four rows of padding above and below.
    assert (masks[:, :4] == 255).all() and (masks[:, -4:] == 255).all()
    assert not (masks[:, 4:-4] == 255).any()
    np.testing.assert_allclose(images[:, :4], 7 / 255.0)


def test_crop_policies_rescale_then_crop_and_pad_small_images_with_ignore(isic):
    cfg, index = isic
    train = index.splits["train"][:4]
    crop = OmegaConf.merge(cfg, {"image_size": 16, "resize": "random_crop", "rescale": 20})
    x, y = next(iter(make_dataset(train, crop, batch_size=4, training=True, seed=0)))
    assert x.shape == (4, 16, 16, 3) and y.shape == (4, 16, 16, 1)
    evaluation = [make_dataset(train, crop, batch_size=4, training=False, seed=s) for s in (0, 1)]
    a, b = (next(iter(d))[0].numpy() for d in evaluation)
    np.testing.assert_array_equal(a, b)  # evaluation crops the centre, whatever the seed
    # A crop larger than the image pads the mask with the ignore label.
    big = OmegaConf.merge(cfg, {"image_size": 48, "resize": "center_crop"})
    _, masks = next(iter(make_dataset(train, big, batch_size=4, training=False, seed=0)))
    assert (masks.numpy()[:, :12] == 255).all() and (masks.numpy()[:, 12:36, 8:40] != 255).all()


def test_large_jpeg_decodes_at_reduced_scale_with_its_mask_resized_to_match(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (800, 1200, 3), dtype=np.uint8)
    mask = square_mask(800, 1200, top=200, size=400)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    cv2.imwrite(str(tmp_path / "a.png"), mask)
    sample = Sample("a", str(tmp_path / "a.jpg"), str(tmp_path / "a.png"))
    decoded = decode_sample(sample, label_maps.binary(), 3, request=(64, 64))
    assert decoded.full_size == (800, 1200)
    assert decoded.image.shape == (100, 150, 3)  # 1/8: both sides still >= 64
    assert decoded.mask.shape == (100, 150) and set(np.unique(decoded.mask)) == {0, 1}
    assert decoded.mask[25:75, 25:75].all() and decoded.values[255] == 400 * 400


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_decoded_sample_cache(tmp_path, monkeypatch, mode):
    root = write_folder(tmp_path / "data", n=4)
    cfg = dataset_node(
        "folder",
        images=str(root / "images"),
        masks=str(root / "masks"),
        root="",
        image_size=32,
        cache=mode,
    )
    samples = build_index(cfg).samples()
    loader = SampleLoader(samples, label_maps.binary(), cfg, training=False, cache_dir=tmp_path)
    first = [loader(i) for i in range(len(samples))]
    if mode == "disk":
        assert len(list((tmp_path / "decoded").rglob("*.npz"))) == 4
        loader = SampleLoader(samples, label_maps.binary(), cfg, training=False, cache_dir=tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr("segkit.data.loader.decode_sample", fail)
    for i, (image, mask) in enumerate(first):
        cached_image, cached_mask = loader(i)
        np.testing.assert_array_equal(cached_image, image)
        np.testing.assert_array_equal(cached_mask, mask)


def test_seeded_transform_draws_independently_for_each_transform():
    # albumentations' Compose(seed=...) seeds every transform alike: both flips would always
    # fire together. One shared generator per call must not.
    transform = SeededTransform(lambda: [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    image = np.zeros((4, 4, 3), np.uint8)
    mask = np.arange(16, dtype=np.uint8).reshape(4, 4)
    outcomes = set()
    for index in range(40):
        _, out = transform(image, mask, element_seed(0, 0, index))
        outcomes.add((bool(out[0, 0] in (3, 15)), bool(out[0, 0] in (12, 15))))
    assert outcomes == {(False, False), (True, False), (False, True), (True, True)}
    np.testing.assert_array_equal(transform(image, mask, 5)[1], transform(image, mask, 5)[1])


def test_every_preset_keeps_masks_integer_and_pads_with_ignore():
    from segkit.config.store import SCHEMAS

    rng = np.random.default_rng(0)
    mask = square_mask(32, 32, value=1, top=8, size=16)
    for channels in (3, 1):  # RGB, and grayscale as ISBI is read
        image = rng.integers(0, 256, (32, 32, channels), dtype=np.uint8)
        for name in AUGMENTS:
            aug = OmegaConf.structured(SCHEMAS["augment"][name])
            transforms = AUGMENTS[name](aug, 0, 255)
            if name != "none":
                transforms.append(A.Affine(rotate=(45, 45), fill_mask=255, p=1.0))
            out_image, out = SeededTransform(lambda t=transforms: t)(image, mask, 1)
            assert out_image.shape == image.shape, (name, channels)
            assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1, 255}, name
