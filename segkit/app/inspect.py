"""What a dataset holds, before training on it: the work behind ``python -m segkit.inspect``.

Counts per split, a histogram of image sizes, the raw mask values found, the class pixel
frequencies and a grid of images with their masks laid over them, written to ``output_dir``
(``summary.json``, ``problems.txt``, ``figures/``) and, when tracking is on, logged to an MLflow
run. Problems in files (the ones validation reports) are listed, not raised: inspecting a
broken dataset is how one finds out what is wrong with it. Nothing heavy is imported.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from segkit.app import hydra_job
from segkit.config.validate import validate
from segkit.config.values import to_container
from segkit.core.errors import DataError
from segkit.core.naming import SPLITS, class_names
from segkit.core.progress import ProgressMode, progress
from segkit.data import build_index
from segkit.data.decode import decode_sample, header_size
from segkit.data.geometry import Policy
from segkit.data.index import DatasetIndex, Sample
from segkit.data.labels import LabelMap, histogram
from segkit.data.loader import load_fitted
from segkit.evaluation import figures
from segkit.tracking.tracker import flatten, make_tracker

log = logging.getLogger(__name__)
# Masks are decoded at about this size for pixel statistics (JPEGs then decode reduced).
STATS_SIZE = (256, 256)
TILE = 192


@dataclass
class SplitStats:
    """What one split holds."""

    sizes: list[tuple[int, int]] = field(default_factory=list)
    decoded: int = 0
    values: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))


def inspect(cfg: DictConfig) -> dict:
    """Inspect the dataset of a composed ``inspect`` config; returns the summary written.

    Raises:
        ConfigError, DataError: the config is wrong, or the dataset's root or folders are
            missing (problems in individual files are reported, not raised).
    """
    validate(cfg)
    output_dir = hydra_job.output_dir(cfg.output_dir)
    ds = cfg.dataset
    index = build_index(ds, cfg.cache_dir)
    stats, problems = collect(index, int(ds.channels), cfg.max_samples, cfg.progress)
    summary = summarise_stats(index, ds, stats, problems)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = _write(output_dir, summary, problems)
    folder = output_dir / "figures"
    names = class_names(ds)
    files.append(
        figures.plot_image_sizes({k: v.sizes for k, v in stats.items()}, folder / "image_sizes.png")
    )
    fractions = {k: v["class_fractions"] for k, v in summary["splits"].items() if v["decoded"]}
    files.append(
        figures.plot_class_frequencies(
            {k: [f[n] for n in names] for k, f in fractions.items()},
            names,
            folder / "class_frequencies.png",
        )
    )
    tiles = overlay_tiles(index, ds, int(cfg.overlays), int(cfg.seed))
    files.append(
        figures.plot_overlays(
            tiles, int(ds.num_classes), int(ds.ignore_index), folder / "overlays.png"
        )
    )
    _track(cfg, summary, files, output_dir)
    for line in _table(summary):
        log.info(line)
    return summary


def collect(
    index: DatasetIndex,
    channels: int,
    max_samples: int | None,
    progress_mode: str = ProgressMode.off,
) -> tuple[dict[str, SplitStats], list[str]]:
    """Image sizes of every sample; mask values and class pixels of up to ``max_samples``
    per split; and every problem met (pairing problems from the index included). Progress is
    reported as ``progress_mode`` says."""
    stats = {name: SplitStats() for name in SPLITS}
    problems = list(index.problems)
    jobs = []
    for name in SPLITS:
        for i, sample in enumerate(index.splits.get(name, [])):
            jobs.append((name, sample, max_samples is None or i < max_samples))
    with ThreadPoolExecutor() as pool:
        results = pool.map(lambda job: _sample_stats(job[1], index.labels, channels, job[2]), jobs)
        results = progress(results, desc="inspecting samples", total=len(jobs), mode=progress_mode)
        for (name, _, _), (size, values, labels, problem) in zip(jobs, results, strict=True):
            split = stats[name]
            if size is not None:
                split.sizes.append(size)
            if labels is not None:
                split.decoded += 1
                split.labels += labels
                if values is not None:
                    split.values += values
            if problem:
                problems.append(problem)
    return stats, problems


def summarise_stats(
    index: DatasetIndex, ds: DictConfig, stats: dict[str, SplitStats], problems: list[str]
) -> dict:
    """The JSON-ready summary: per split, counts, sizes, mask values and class fractions."""
    names = class_names(ds)
    ignore = int(ds.ignore_index)
    splits = {}
    for name, split in stats.items():
        labelled = split.labels[: len(names)].sum()
        total = split.labels.sum()
        sizes = np.array(split.sizes or [(0, 0)])
        splits[name] = {
            "samples": len(index.splits.get(name, [])),
            "origin": index.origin.get(name, ""),
            "decoded": split.decoded,
            "height": {"min": int(sizes[:, 0].min()), "max": int(sizes[:, 0].max())},
            "width": {"min": int(sizes[:, 1].min()), "max": int(sizes[:, 1].max())},
            "distinct_sizes": len(set(split.sizes)),
            # Raw values as found in the files (JSON keys are strings).
            "mask_values": {str(v): int(split.values[v]) for v in np.flatnonzero(split.values)},
            "class_fractions": {
                n: float(split.labels[k] / labelled) if labelled else 0.0
                for k, n in enumerate(names)
            },
            "ignore_fraction": float(split.labels[ignore] / total) if total else 0.0,
        }
    return {
        "dataset": str(ds.name),
        "root": str(ds.root),
        "expected_mask_values": index.labels.expected,
        "splits": splits,
        "problems": len(problems),
    }


def overlay_tiles(
    index: DatasetIndex, ds: DictConfig, count: int, seed: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Up to ``count`` samples drawn with ``seed``, letterboxed to tiles (unreadable ones
    are skipped: they are in the problem list)."""
    samples = index.samples()
    tile = Policy("letterbox", TILE, ignore_index=int(ds.ignore_index))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(samples), size=min(count, len(samples)), replace=False)
    tiles = []
    for i in sorted(int(k) for k in chosen):
        sample = samples[i]
        try:
            image, mask = load_fitted(sample, index.labels, int(ds.channels), tile)
        except DataError:
            continue
        tiles.append((sample.id, image, mask))
    return tiles


def _sample_stats(sample: Sample, labels: LabelMap, channels: int, decode: bool):
    """(size, raw value counts, label counts, problem) of one sample."""
    try:
        size = header_size(sample.image, sample.page)
        if not decode:
            return size, None, None, ""
        decoded = decode_sample(sample, labels, channels, STATS_SIZE)
    except DataError as error:
        return None, None, None, str(error)
    return size, decoded.values, histogram(decoded.mask), ""


def _write(output_dir: Path, summary: dict, problems: list[str]) -> list[Path]:
    summary_file = output_dir / "summary.json"
    summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    problems_file = output_dir / "problems.txt"
    problems_file.write_text("".join(f"{p}\n" for p in problems))
    return [summary_file, problems_file]


def _track(cfg: DictConfig, summary: dict, files: list[Path], output_dir: Path) -> None:
    if not cfg.tracking.enabled:
        return
    tracker = make_tracker(cfg.tracking)
    params = flatten({"dataset": to_container(cfg.dataset)})
    params.update({f"data.{k}_samples": str(v["samples"]) for k, v in summary["splits"].items()})
    tags = {"segkit.command": "inspect", "output_dir": str(output_dir)}
    with tracker.running(cfg.run_name or f"inspect-{cfg.dataset.name}", params, tags):
        metrics = {"data/problems": float(summary["problems"])}
        for split, values in summary["splits"].items():
            metrics[f"data/{split}/samples"] = float(values["samples"])
            for name, fraction in values["class_fractions"].items():
                metrics[f"data/{split}/class_fraction/{name}"] = fraction
        tracker.log_metrics(metrics, step=0)
        for path in files:
            tracker.log_artifact(path, "figures" if path.suffix == ".png" else None)


def _table(summary: dict) -> list[str]:
    lines = [f"dataset {summary['dataset']} at {summary['root']}"]
    for split, v in summary["splits"].items():
        if not v["samples"]:
            lines.append(f"  {split:5s}      0 samples")
            continue
        fractions = ", ".join(f"{n} {f:.3f}" for n, f in v["class_fractions"].items())
        lines.append(
            f"  {split:5s} {v['samples']:6d} samples ({v['origin']}); sizes "
            f"{v['width']['min']}-{v['width']['max']} x {v['height']['min']}-{v['height']['max']}; "
            f"mask values {', '.join(v['mask_values']) or '-'}; classes: {fractions or '-'}"
        )
    lines.append(
        f"  {summary['problems']} problem(s)"
        + (" (see problems.txt)" if summary["problems"] else "")
    )
    return lines
