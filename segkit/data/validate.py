"""Dataset validation before training: one pass over every sample that reports all problems.

Problems are found at three depths (``dataset.validate``):

- ``off``: file names only: images without masks and masks without images, missing or empty
  split files, empty splits (the index builders find these).
- ``quick``: also every file's header (readable, image and mask of the same size) and its last
  bytes (a JPEG or PNG cut short by an interrupted copy). No pixel is decoded.
- ``full``: also decodes every file: corrupt data and invalid mask values (128 in a 0/255 mask,
  7 in a 5-class dataset). Images decode at reduced scale where the format allows it; masks at
  full size, since every pixel must be checked.

Files are read by a thread pool (the decoders release the GIL). A successful check is remembered
under ``<cache_dir>/validated/``, keyed by the mode, the label map and every file's path, size
and modification time, so the next run on unchanged files skips it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import DataError
from segkit.core.progress import ProgressMode, progress
from segkit.data.decode import check_file_end, decode_sample, header_size, size_mismatch
from segkit.data.fingerprint import fingerprint
from segkit.data.index import DatasetIndex, Sample, summarise
from segkit.data.labels import LabelMap

log = logging.getLogger(__name__)
# Scanning stops after this many problems: a dataset that wrong needs fixing, not a full list.
MAX_PROBLEMS = 1000
# Full validation decodes images at about this size: enough to parse all their data.
CHECK_SIZE = (64, 64)
REQUIRED_SPLITS = ("train", "val")


@dataclass(frozen=True)
class ValidationReport:
    """What a successful validation did: its mode, samples checked, seconds, cache hit."""

    mode: str
    samples: int
    seconds: float
    cached: bool

    def describe(self) -> str:
        """One line for logs and tags, e.g. ``full: 650 samples (3.1 s)``."""
        if self.mode == "off":
            return "off: file names only"
        where = "passed before, files unchanged" if self.cached else f"{self.seconds:.1f} s"
        return f"{self.mode}: {self.samples} samples ({where})"


def validate_dataset(
    index: DatasetIndex,
    dataset: DictConfig,
    cache_dir: str | os.PathLike | None = None,
    report_file: str | os.PathLike | None = None,
    progress_mode: str = ProgressMode.off,
) -> ValidationReport:
    """Check every sample of ``index`` as deep as ``dataset.validate`` says.

    Args:
        index: the dataset's index (its pairing problems are reported too).
        dataset: the ``dataset`` config node (validate, channels, name, root).
        cache_dir: where successful validations are remembered; None remembers nothing.
        report_file: where the full list of problems is written when there are more than a
            one-line message shows.
        progress_mode: how the scan reports progress (the commands' ``progress`` setting).

    Raises:
        DataError: one line: how many problems, the first few (each naming its file), and
            where the full list is.
    """
    mode = option_value(dataset.validate)
    start = time.perf_counter()
    problems = list(index.problems)
    for split in REQUIRED_SPLITS:
        if not index.splits.get(split):
            problems.append(
                f"the {split} split of dataset {dataset.name!r} is empty "
                f"({index.origin.get(split, 'no samples')})"
            )
    samples = index.samples()
    problems += _shared_ids(index)
    marker = _marker(cache_dir, mode, index.labels, int(dataset.channels), samples)
    cached = marker is not None and marker.exists()
    if mode != "off" and not cached:
        desc = f"validating {dataset.name} ({mode})"
        channels, full = int(dataset.channels), mode == "full"
        problems += scan(samples, index.labels, channels, full, progress_mode, desc)
    if problems:
        raise DataError(_message(problems, report_file))
    if marker is not None and mode != "off":
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{len(samples)} samples\n")
        except OSError as error:  # a full or read-only cache_dir: the next run validates again
            log.warning("cache_dir: cannot record the validation (%s)", error.strerror or error)
    report = ValidationReport(mode, len(samples), time.perf_counter() - start, cached)
    log.info("dataset validation %s", report.describe())
    return report


def scan(
    samples: list[Sample],
    labels: LabelMap,
    channels: int,
    full: bool,
    progress_mode: str = ProgressMode.off,
    desc: str = "validating",
) -> list[str]:
    """Problems of every sample (at most ``MAX_PROBLEMS``), in sample order; progress is
    reported as ``progress_mode`` says, under ``desc``."""
    problems: list[str] = []
    with ThreadPoolExecutor() as pool:
        checked = pool.map(lambda s: check_sample(s, labels, channels, full), samples)
        for found in progress(checked, desc=desc, total=len(samples), mode=progress_mode):
            problems += found
            if len(problems) >= MAX_PROBLEMS:
                pool.shutdown(cancel_futures=True)
                problems.append(f"scan stopped after {MAX_PROBLEMS} problems")
                break
    return problems


def check_sample(sample: Sample, labels: LabelMap, channels: int, full: bool) -> list[str]:
    """Problems of one sample, each naming its file; empty when it is fine."""
    if full:
        try:
            decode_sample(sample, labels, channels, CHECK_SIZE)
        except DataError as error:
            return [str(error)]
        return []
    problems = [p for p in map(check_file_end, sample.files) if p]
    try:
        image_size = header_size(sample.image, sample.page)
        for path in sample.mask_files:
            mask_size = header_size(path, sample.page)
            if mask_size != image_size:
                problems.append(size_mismatch(sample, path, mask_size, image_size))
    except DataError as error:
        problems.append(str(error))
    return problems


def _shared_ids(index: DatasetIndex) -> list[str]:
    """A sample in two splits would be scored on data it trained on."""
    seen: dict[str, str] = {}
    problems = []
    for split, samples in index.splits.items():
        for sample in samples:
            if sample.id in seen:
                problems.append(
                    f"{sample.image}: sample {sample.id} is in both the {seen[sample.id]} and "
                    f"the {split} split"
                )
            seen.setdefault(sample.id, split)
    return problems


def _message(problems: list[str], report_file) -> str:
    text = summarise(problems)
    if report_file is not None and len(problems) > 1:
        path = Path(report_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{p}\n" for p in problems))
        text += f" (all listed in {path})"
    return text


def _marker(
    cache_dir, mode: str, labels: LabelMap, channels: int, samples: list[Sample]
) -> Path | None:
    """The file that records a successful validation of exactly these files."""
    if cache_dir is None or mode == "off":
        return None
    salt = json.dumps([mode, channels, labels.table, labels.colours])
    digest = fingerprint(samples, salt)
    if digest is None:  # a file vanished: validate for real, which will say so
        return None
    return Path(cache_dir).expanduser() / "validated" / digest
