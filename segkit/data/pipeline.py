"""Streaming tf.data pipeline: indices -> decode, fit, augment (numpy) -> normalise, batch.

Only sample indices flow through tf.data; ``SampleLoader`` decodes each one in a
``tf.numpy_function`` that tf.data calls in parallel (Pillow, OpenCV and albumentations release
the GIL for the heavy work). Nothing but file paths is held in memory unless
``dataset.cache=memory``.

A training dataset holds all its epochs: epoch ``e`` is a permutation of all the samples drawn
with the stateless seed (``seed``, ``e``), cut to whole batches, and every element is augmented
with a seed of (``seed``, ``e``, sample index). Two runs with the same seed therefore see the
same batches, and every epoch differs from the last. Fit it with ``steps_per_epoch`` set, so
Keras reads one continuous stream instead of restarting it each epoch.
"""

from __future__ import annotations

import os

import tensorflow as tf
from omegaconf import DictConfig

from segkit.core.progress import ProgressMode
from segkit.data import labels as label_maps
from segkit.data.index import Sample
from segkit.data.labels import LabelMap
from segkit.data.loader import SampleLoader

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    samples: list[Sample],
    dataset: DictConfig,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    limit_batches: int | None = None,
    labels: LabelMap | None = None,
    augment: DictConfig | None = None,
    epochs: int = 1,
    first_epoch: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress_mode: str = ProgressMode.off,
) -> tf.data.Dataset:
    """Batches of ``(image float32 [B,S,S,C] in [0,1], mask uint8 [B,S,S,1])``.

    Args:
        samples: the split to read.
        dataset: the ``dataset`` config node (image_size, channels, resize, cache, ...).
        batch_size: global batch size (a tf.distribute strategy splits it across replicas);
            a training split smaller than a batch trains on batches of all its samples.
        training: shuffle, augment, random crops, and only whole batches.
        seed: the run seed; shuffling and augmentation derive from it.
        limit_batches: at most this many batches per epoch (smoke runs); None = all.
        labels: how the masks read (``DatasetIndex.labels``); None = binary 0/1 or 0/255.
        augment: the ``augment`` config node (training only); None = no augmentation.
        epochs: epochs a training dataset holds (fit it with ``steps_per_epoch``).
        first_epoch: the first of them (a later training phase starts mid-run): the dataset
            holds epochs ``first_epoch`` to ``epochs - 1``.
        cache_dir: where ``dataset.cache=disk`` keeps decoded samples; those it lacks are
            decoded into it first, reporting progress as ``progress_mode`` says.
    """
    if not samples:
        raise ValueError("make_dataset needs at least one sample")
    loader = SampleLoader(
        samples,
        labels or label_maps.binary(),
        dataset,
        training=training,
        augment=augment,
        seed=seed,
        cache_dir=cache_dir,
    )
    n = len(samples)
    limited = not training and limit_batches is not None  # reads only its first samples
    loader.fill(limit_batches * batch_size if limited else None, progress_mode)
    load = _load_function(loader)
    if training:
        per_batch = min(batch_size, n)
        ds = _training_elements(n, per_batch, seed, limit_batches, first_epoch, epochs)
        ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.batch(per_batch, drop_remainder=True)
    else:
        ds = tf.data.Dataset.range(n).map(lambda i: (i, tf.constant(0, tf.int64)))
        ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size)
        if limit_batches is not None:
            ds = ds.take(limit_batches)
    return ds.prefetch(AUTOTUNE)


def _load_function(loader: SampleLoader):
    """(sample index, epoch) -> (image float32 [S, S, C] in [0, 1], mask uint8 [S, S, 1]),
    decoded by ``loader`` in a ``tf.numpy_function``."""
    size, channels = loader.size, loader.channels

    def load(index: tf.Tensor, epoch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = tf.numpy_function(
            loader, [index, epoch], [tf.uint8, tf.uint8], stateful=False, name="load_sample"
        )
        image.set_shape((size, size, channels))
        mask.set_shape((size, size))
        return tf.cast(image, tf.float32) / 255.0, mask[..., None]

    return load


def _training_elements(
    n: int, per_batch: int, seed: int, limit_batches: int | None, first_epoch: int, epochs: int
) -> tf.data.Dataset:
    """(sample index, epoch) of every element of epochs ``first_epoch`` to ``epochs - 1``:
    each epoch a permutation of the ``n`` samples cut to whole batches (and to
    ``limit_batches``)."""
    per_epoch = n // per_batch * per_batch  # whole batches only
    if limit_batches is not None:
        per_epoch = min(per_epoch, limit_batches * per_batch)

    def epoch_indices(epoch: tf.Tensor) -> tf.data.Dataset:
        # A full permutation of the indices, a pure function of (seed, epoch): no shuffle
        # buffer, no dependence on TensorFlow's global seed.
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order[:per_epoch]).map(lambda i: (i, epoch))

    return tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_indices)
