"""Images/s and peak memory of prediction on full-resolution images: whole-image vs tiled.

Reads the full-resolution ISIC samples (JPEGs up to 4288x2848) and predicts a mask at each
image's own resolution with segkit's ``Predictor`` and a UNet of the default size (base 16,
depth 4, 256 px input; random weights: speed and memory do not depend on them):

- whole: the training policy (``resize``): the image is decoded at reduced scale, squashed to
  256x256, predicted once, and the prediction resized back to full size;
- tiled-S: a sliding window of 256 px tiles with 25% overlap over the image scaled by S
  (``inference.scale=S``), blended, then resized back to full size.

Each mode runs in its own subprocess, one after another, so the peak resident memory
(``ru_maxrss``) belongs to one mode; ``after model`` is the resident memory once the model is
built and has predicted once, so ``peak - after model`` is what prediction itself holds.

    python scripts/bench_predict.py
    python scripts/bench_predict.py --modes whole tiled-0.25 tiled-0.5 --images 6
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from child_measure import measure_in_child

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "isic2018_fullres"
MODES = ("whole", "tiled-0.25", "tiled-0.5", "tiled-1.0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ISIC 2018 Task 1 folder")
    parser.add_argument("--size", type=int, default=256, help="model input side")
    parser.add_argument("--images", type=int, default=12, help="images per mode (at most 12)")
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    if not args.data.is_dir():
        sys.exit(f"bench_predict: {args.data} not found (set --data)")
    rows = []
    for mode in args.modes:
        child_args = [mode, "--data", str(args.data), "--size", str(args.size)]
        rows.append(measure_in_child(__file__, [*child_args, "--images", str(args.images)], mode))
    base = rows[0]
    print(f"{len(rows)} modes, {base['images']} images, {base['pixels'] / 1e6:.1f} MP in all")
    header = (
        f"| mode | tiles/image | images/s | x {base['mode']} | peak RSS MB | after model MB "
        "| prediction MB |"
    )
    print(header)
    print("|" + "---|" * 7)
    for r in rows:
        print(
            f"| {r['mode']} | {r['tiles']:.1f} | {r['images_per_s']:.2f} | "
            f"{r['images_per_s'] / base['images_per_s']:.2f} | {r['peak_mb']:.0f} | "
            f"{r['model_mb']:.0f} | {r['peak_mb'] - r['model_mb']:.0f} |"
        )


def measure(mode: str, args) -> dict:
    """Predict every image once in this process; speed and memory."""
    import numpy as np
    from omegaconf import OmegaConf

    from segkit.config.inference import InferenceConfig
    from segkit.config.store import SCHEMAS
    from segkit.data.decode import header_size, read_image
    from segkit.data.geometry import Policy
    from segkit.evaluation.inference import Predictor
    from segkit.models import build_model

    images = sorted((args.data / "ISIC2018_Task1-2_Training_Input").glob("*.jpg"))[: args.images]
    model_cfg = OmegaConf.merge(OmegaConf.structured(SCHEMAS["model"]["unet"]), {"name": "unet"})
    dataset_cfg = OmegaConf.merge(
        OmegaConf.structured(SCHEMAS["dataset"]["isic"]),
        {"name": "isic", "root": str(args.data), "image_size": args.size},
    )
    model = build_model(model_cfg, dataset_cfg)
    tiled = mode.startswith("tiled")
    settings = InferenceConfig(
        mode="tiled" if tiled else "whole", scale=float(mode.split("-")[1]) if tiled else None
    )
    predictor = Predictor(model, Policy("resize", args.size), settings)
    calls = {"tiles": 0}
    predict = model.predict_on_batch

    def counting(batch):
        calls["tiles"] += len(batch)
        return predict(batch)

    model.predict_on_batch = counting
    predictor.probabilities(np.zeros((args.size, args.size, 3), np.uint8), (64, 64))  # warm-up
    calls["tiles"] = 0
    model_mb = _rss_mb()
    pixels = 0
    start = time.perf_counter()
    for path in images:
        height, width = header_size(str(path))
        image, _ = read_image(str(path), None, 3, predictor.request(height, width))
        labels = predictor.labels(predictor.probabilities(image, (height, width)))
        assert labels.shape == (height, width)
        pixels += height * width
    elapsed = time.perf_counter() - start
    return {
        "mode": mode,
        "images": len(images),
        "pixels": pixels,
        "tiles": calls["tiles"] / len(images),
        "images_per_s": len(images) / elapsed,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_mb": model_mb,
    }


def _rss_mb() -> float:
    """Current resident memory of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
