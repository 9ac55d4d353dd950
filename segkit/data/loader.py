"""One sample at a time, in numpy: decode, fit to the policy, cache, transform.

``SampleLoader`` is what the tf.data pipeline calls (through ``tf.numpy_function``) for each
element, from several threads at once. The deterministic part (decode, resize or letterbox, or
the rescale before a crop) can be cached in memory or on disk; the random part (crop,
augmentation) is seeded per element from (run seed, epoch, sample index), so a run with the same
seed sees the same batches whatever the thread timing. ``SampleLoader.fill`` decodes the samples
missing from a disk cache before the pipeline starts, in parallel and with progress reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.atomic import replacing
from segkit.core.progress import ProgressMode, progress
from segkit.data import geometry
from segkit.data.augment import SeededTransform, build_transforms, element_seed
from segkit.data.decode import decode_sample, header_size
from segkit.data.index import Sample
from segkit.data.labels import LabelMap

log = logging.getLogger(__name__)
# Disk cache folders a write failed in (the warning is given once per folder).
_UNWRITABLE: set[Path] = set()

# Bump when the cached arrays would change for the same settings (decoder or resize changes).
CACHE_VERSION = 1


class SampleLoader:
    """Load sample ``index`` of ``samples`` as (image uint8 [S, S, C], mask uint8 [S, S]).

    Args:
        samples: the split.
        labels: how the masks read.
        dataset: the ``dataset`` config node (image_size, channels, resize, rescale,
            pad_value, ignore_index, cache).
        training: random crops and augmentation (evaluation crops the centre, no augmentation).
        augment: the ``augment`` config node, or None for no augmentation.
        seed: the run seed the per-element seeds derive from.
        cache_dir: where ``cache: disk`` keeps decoded samples (under ``decoded/``).
    """

    def __init__(
        self,
        samples: list[Sample],
        labels: LabelMap,
        dataset: DictConfig,
        *,
        training: bool,
        augment: DictConfig | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.samples = samples
        self.labels = labels
        # Plain values: read from many threads, and OmegaConf access is slow.
        self.policy = geometry.Policy.from_config(dataset)
        self.size = self.policy.size
        self.channels = int(dataset.channels)
        self.seed = int(seed)
        transforms = build_transforms(dataset, augment, training)
        self.transform = (
            SeededTransform(lambda: build_transforms(dataset, augment, training))
            if transforms
            else None
        )
        self.cache = _make_cache(option_value(dataset.cache), cache_dir, self._settings())

    def __len__(self) -> int:
        return len(self.samples)

    def __call__(self, index, epoch=0) -> tuple[np.ndarray, np.ndarray]:
        """The sample at ``index`` as the model sees it in ``epoch`` (numpy scalars accepted)."""
        index, epoch = int(index), int(epoch)
        image, mask = self.load(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask, element_seed(self.seed, epoch, index))
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The deterministic part: decoded and fitted to the resize policy (cached)."""
        sample = self.samples[index]
        if self.cache is not None:
            hit = self.cache.get(sample)
            if hit is not None:
                return hit
        image, mask = load_fitted(sample, self.labels, self.channels, self.policy)
        if self.cache is not None:
            self.cache.put(sample, image, mask)
        return image, mask

    def fill(self, count: int | None = None, progress_mode: str = ProgressMode.off) -> int:
        """Decode into the disk cache those of the first ``count`` samples (None: all) that it
        lacks, so that the first epoch reads the cache; returns how many were decoded.

        A no-op unless ``dataset.cache=disk``. Samples are decoded by a thread pool (the
        decoders release the GIL); progress is reported as ``progress_mode`` says. A failed
        write (a full disk) ends the pass: the pipeline then decodes the rest as it goes.
        """
        cache = self.cache
        if not isinstance(cache, DiskCache):
            return 0
        first = self.samples if count is None else self.samples[:count]
        missing = [i for i, sample in enumerate(first) if not cache.has(sample)]
        if not missing:
            return 0
        with ThreadPoolExecutor() as pool:
            loaded = pool.map(lambda i: self.load(i) and None, missing)  # keep no arrays
            for _ in progress(
                loaded, desc="filling the disk cache", mode=progress_mode, total=len(missing)
            ):
                if not cache.writable:
                    pool.shutdown(cancel_futures=True)
                    break
        return len(missing)

    def _settings(self) -> dict:
        """Everything the deterministic part depends on besides the files themselves."""
        return {
            "version": CACHE_VERSION,
            "labels": [list(self.labels.table), [list(c) for c in self.labels.colours]],
            "channels": self.channels,
            "policy": dataclasses.asdict(self.policy),
        }


def load_fitted(
    sample: Sample, labels: LabelMap, channels: int, policy: geometry.Policy
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a sample at the smallest scale the policy allows, then fit it to the policy."""
    height, width = header_size(sample.image, sample.page)
    decoded = decode_sample(sample, labels, channels, geometry.request(policy, height, width))
    return geometry.fit(decoded.image, decoded.mask, policy)


class MemoryCache:
    """Decoded samples in a dict, for the life of one dataset object."""

    def __init__(self):
        self._items: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, sample: Sample) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached pair, or None."""
        return self._items.get(_sample_key(sample))

    def put(self, sample: Sample, image: np.ndarray, mask: np.ndarray) -> None:
        """Keep a pair (a concurrent put of the same sample stores the same arrays)."""
        self._items[_sample_key(sample)] = (image, mask)


class DiskCache:
    """Decoded samples as ``.npz`` files under ``<cache_dir>/decoded/<settings digest>/``.

    A file is keyed by the sample's paths and their sizes and modification times, so an edited
    file is decoded again. Files are written to a temporary name and renamed into place, so
    concurrent runs never read half a file.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        # Off once a write fails (a full or read-only disk): training goes on uncached.
        self.writable = True

    def get(self, sample: Sample) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached pair, or None (also for an unreadable cache file)."""
        path = self._path(sample)
        try:
            with np.load(path) as data:
                return data["image"], data["mask"]
        except (OSError, ValueError, KeyError):
            return None

    def has(self, sample: Sample) -> bool:
        """Whether the sample has a cache file (not read: ``get`` tells a readable one)."""
        try:
            return self._path(sample).is_file()
        except OSError:  # a sample file vanished: loading it will say so
            return False

    def put(self, sample: Sample, image: np.ndarray, mask: np.ndarray) -> None:
        """Write a pair atomically; after a failed write (a full disk), nothing more."""
        if not self.writable:
            return
        try:
            # Not flushed to disk: a cache file lost in a crash is decoded again.
            with replacing(self._path(sample), durable=False) as tmp:
                np.savez(tmp, image=image, mask=mask)
        except OSError as error:
            self.writable = False
            if self.folder in _UNWRITABLE:  # said once per folder, not per split or thread
                return
            _UNWRITABLE.add(self.folder)
            log.warning(
                "cache_dir: cannot write decoded samples under %s (%s); training goes on "
                "without caching the others (dataset.cache=none to skip the cache)",
                self.folder,
                error.strerror or error,
            )

    def _path(self, sample: Sample) -> Path:
        stats = [(f, *_stat(f)) for f in sample.files]
        key = json.dumps([sample.id, sample.page, stats])
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"


def _make_cache(mode: str, cache_dir, settings: dict) -> MemoryCache | DiskCache | None:
    if mode == "memory":
        return MemoryCache()
    if mode == "disk":
        if cache_dir is None:
            raise ValueError("dataset.cache=disk needs a cache_dir")
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        return DiskCache(Path(cache_dir).expanduser() / "decoded" / digest)
    return None


def _sample_key(sample: Sample) -> tuple:
    return (sample.id, sample.image, sample.page)


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
