"""Images/s and peak memory: segkit's tf.data pipeline against a seed-style Keras loader.

Both loaders read the full-resolution ISIC samples (JPEG images up to 4288x2848, 0/255 PNG
masks), resize to ``--size`` and apply the same ``standard`` augmentation preset:

- segkit: ``segkit.data.pipeline.make_dataset`` (reduced-scale JPEG decoding, parallel calls
  through ``tf.numpy_function``, prefetching);
- segkit-cached: the same with ``dataset.cache=disk``, measured once the cache is filled (what
  every epoch after the first costs: augmentation still differs per epoch);
- seed: a ``keras.utils.PyDataset`` that reads each file with OpenCV at full size and resizes it,
  one item at a time, as the ISIC seed projects do (``workers=1``, their default).

Besides images/s (wall clock) each row gives images per CPU-second of the process, which other
load on a shared machine disturbs far less: on an idle machine a loader that uses every core
reaches about (cores x images per CPU-second) images/s.

Each measurement runs in its own subprocess, one after another, so the peak resident memory
(``ru_maxrss`` of that process) belongs to one loader and one dataset size. The dataset grows by
repeating the file list (``--scales``); every run processes the same number of images, so only
the dataset's size changes between scales. The machine's other load affects both loaders alike
only if nothing else changes during the run: rerun on a quiet machine for numbers to quote.

    python scripts/bench_pipeline.py                       # the table
    python scripts/bench_pipeline.py --images 240 --scales 1 10 100
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

from child_measure import measure_in_child

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "isic2018_fullres"
LOADERS = ("segkit", "segkit-cached", "seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ISIC 2018 Task 1 folder")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=192, help="images per measurement")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="list repeats")
    parser.add_argument("--loaders", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--child", choices=list(LOADERS), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    if not args.data.is_dir():
        sys.exit(f"bench_pipeline: {args.data} not found (set --data)")
    rows = []
    for loader in args.loaders:
        for scale in args.scales:
            rows.append(run_child(loader, scale, args))
            print(f"  measured {loader} at {scale}x", file=sys.stderr)
    print_table(rows, args)


def run_child(loader: str, scale: int, args) -> dict:
    """One measurement in a fresh process (honest peak memory)."""
    child_args = [
        loader, "--repeat", str(scale), "--data", str(args.data), "--size", str(args.size),
        "--batch", str(args.batch), "--images", str(args.images),
    ]  # fmt: skip
    measured = measure_in_child(__file__, child_args, f"{loader} at {scale}x")
    return {"loader": loader, "scale": scale, **measured}


def measure(loader: str, args) -> dict:
    """Iterate ``args.images`` images (after one warm-up batch): images/s, images per
    CPU-second, peak RSS."""
    import tempfile

    pairs = file_pairs(args.data) * args.repeat
    per_epoch = len(pairs) // args.batch * args.batch  # both loaders drop incomplete batches
    epochs = max(1, -(-(args.images + args.batch) // per_epoch))
    with tempfile.TemporaryDirectory() as cache_dir:
        if loader == "seed":
            batches = seed_batches(pairs, args, epochs)
        else:
            cache = cache_dir if loader == "segkit-cached" else None
            if cache:
                for _ in segkit_batches(pairs, args, 1, cache):  # fill the cache, untimed
                    pass
            batches = segkit_batches(pairs, args, epochs, cache)
        next(batches)  # warm-up: graph building, thread pools
        start, cpu_start, images = time.perf_counter(), _cpu_seconds(), 0
        while images < args.images:
            images += len(next(batches)[0])
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
        # Stop the pipeline before the interpreter exits: tf.data threads still running
        # Python (tf.numpy_function) during shutdown can abort the process.
        batches.close()
        gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"files": len(pairs), "images": images, "seconds": seconds, "cpu": cpu, "peak_mib": peak}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def file_pairs(root: Path) -> list[tuple[str, str]]:
    """(image, mask) paths of the ISIC training folders, via segkit's own index."""
    from omegaconf import OmegaConf

    from segkit.data.formats.isic import index_isic_folder

    split = OmegaConf.create({"val": 0.0, "test": 0.0, "seed": 0, "files": None})
    return [(s.image, s.mask) for s in index_isic_folder(root, split).samples()]


def segkit_batches(pairs, args, epochs, cache_dir=None):
    from omegaconf import OmegaConf

    from segkit.config.augment import StandardAugmentConfig
    from segkit.config.dataset import IsicDatasetConfig
    from segkit.data.index import Sample
    from segkit.data.pipeline import make_dataset

    # Repeated files are distinct samples (ids differ), as in a larger dataset.
    samples = [Sample(f"{i}", image, mask) for i, (image, mask) in enumerate(pairs)]
    dataset = OmegaConf.structured(
        IsicDatasetConfig(
            name="isic", root="", image_size=args.size, cache="disk" if cache_dir else "none"
        )
    )
    augment = OmegaConf.structured(StandardAugmentConfig(name="standard"))
    ds = make_dataset(
        samples, dataset, batch_size=args.batch, training=True, seed=0, augment=augment,
        epochs=epochs, cache_dir=cache_dir,
    )  # fmt: skip
    for images, masks in ds:
        yield images.numpy(), masks.numpy()


def seed_batches(pairs, args, epochs):
    import albumentations as A
    import cv2
    import keras
    import numpy as np
    from omegaconf import OmegaConf

    from segkit.config.augment import StandardAugmentConfig
    from segkit.data.augment import standard

    class SeedLoader(keras.utils.PyDataset):
        """Read, resize and augment one item at a time with OpenCV (the seeds' loader)."""

        def __init__(self, pairs, batch_size, size):
            super().__init__()
            self.pairs, self.batch_size, self.size = pairs, batch_size, size
            preset = OmegaConf.structured(StandardAugmentConfig(name="standard"))
            self.transform = A.Compose(standard(preset, 0, 255), strict=True)

        def __len__(self):
            return len(self.pairs) // self.batch_size

        def __getitem__(self, index):
            images, masks = [], []
            for image_path, mask_path in self.pairs[index * self.batch_size :][: self.batch_size]:
                image = cv2.cvtColor(cv2.imread(image_path), cv2.COLOR_BGR2RGB)
                image = cv2.resize(image, (self.size, self.size))
                mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
                mask = cv2.resize(mask, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
                out = self.transform(image=image, mask=(mask > 127).astype(np.uint8))
                images.append(out["image"].astype(np.float32) / 255.0)
                masks.append(out["mask"][..., None])
            return np.stack(images), np.stack(masks)

    loader = SeedLoader(pairs, args.batch, args.size)
    for _ in range(epochs):
        for index in range(len(loader)):
            yield loader[index]


def print_table(rows: list[dict], args) -> None:
    print(
        f"\nISIC full resolution ({args.data.name}), resize to {args.size}, standard augmentation,"
        f" batch {args.batch}, {os.cpu_count()} CPU cores, {args.images} images per row"
    )
    header = (
        f"{'loader':14s} {'scale':>5s} {'files':>6s} {'images/s':>9s} {'vs seed':>8s}"
        f" {'img/CPU-s':>10s} {'vs seed':>8s} {'peak RSS MiB':>13s} {'vs 1x':>6s}"
    )
    print(header)
    print("-" * len(header))
    first = min(args.scales)
    by_key = {(r["loader"], r["scale"]): r for r in rows}
    for r in rows:
        rate, per_cpu = r["images"] / r["seconds"], r["images"] / r["cpu"]
        seed = by_key.get(("seed", r["scale"]))
        versus = f"{rate / (seed['images'] / seed['seconds']):7.2f}x" if seed else f"{'-':>8s}"
        versus_cpu = f"{per_cpu / (seed['images'] / seed['cpu']):7.2f}x" if seed else f"{'-':>8s}"
        growth = r["peak_mib"] / by_key[(r["loader"], first)]["peak_mib"]
        print(
            f"{r['loader']:14s} {r['scale']:4d}x {r['files']:6d} {rate:9.1f} {versus} "
            f"{per_cpu:10.1f} {versus_cpu} {r['peak_mib']:13.0f} {growth:5.2f}x"
        )


if __name__ == "__main__":
    main()
