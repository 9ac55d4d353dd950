"""Streaming tf.data pipeline: read, decode, resize, normalise, batch, prefetch.

Only file paths are held in memory; images are decoded in parallel as batches are consumed.
Images are resized bilinearly (with antialiasing) and scaled to [0, 1]; masks stay integer and are
resized with nearest neighbour only, so no label value is ever invented by interpolation.
"""

from __future__ import annotations

import tensorflow as tf
from omegaconf import DictConfig

from segkit.data.index import Sample

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    samples: list[Sample],
    dataset: DictConfig,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    shuffle_buffer: int = 1024,
    limit_batches: int | None = None,
) -> tf.data.Dataset:
    """Batches of ``(image float32 [B,S,S,C] in [0,1], mask uint8 [B,S,S,1])``.

    Args:
        samples: the split to read.
        dataset: the ``dataset`` config node (image_size, channels, num_classes, ignore_index).
        batch_size: global batch size (a tf.distribute strategy splits it across replicas).
        training: shuffle every epoch and drop the last incomplete batch.
        seed: shuffle seed; the same seed gives the same order of batches.
        shuffle_buffer: samples held for shuffling (paths only before decoding).
        limit_batches: stop after this many batches (smoke runs); None reads the whole split.
    """
    if not samples:
        raise ValueError("make_dataset needs at least one sample")
    size = int(dataset.image_size)
    channels = int(dataset.channels)
    binary = int(dataset.num_classes) == 2

    def load(image_path: tf.Tensor, mask_path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(
            tf.io.read_file(image_path), channels=channels, expand_animations=False
        )
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
        mask = tf.io.decode_image(tf.io.read_file(mask_path), channels=1, expand_animations=False)
        mask = tf.image.resize(mask, (size, size), method="nearest")
        if binary:
            # Binary masks come as 0/255 (ISIC) or 0/1: any non-zero value is foreground.
            mask = tf.cast(mask > 0, mask.dtype)
        image.set_shape((size, size, channels))
        mask.set_shape((size, size, 1))
        return image, tf.cast(mask, tf.uint8)

    paths = ([s.image for s in samples], [s.mask for s in samples])
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if training:
        ds = ds.shuffle(min(len(samples), shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training and len(samples) >= batch_size)
    if limit_batches is not None:
        ds = ds.take(limit_batches)
    return ds.prefetch(AUTOTUNE)
