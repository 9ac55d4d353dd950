"""``python -m segkit.predict``: a mask and an overlay for every image of a folder (or one file),
each at the image's own size."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from segkit.config.validate import validate
from segkit.config.values import option_value
from segkit.core.atomic import creating
from segkit.core.errors import DataError, first_few
from segkit.core.paths import check_writable_folder
from segkit.core.progress import progress
from segkit.core.scores import classes_of_output
from segkit.data.decode import header_size, read_image
from segkit.data.geometry import Policy
from segkit.data.index import image_files
from segkit.evaluation import model_source
from segkit.evaluation.figures import label_colours
from segkit.evaluation.inference import Predictor
from segkit.evaluation.postprocess import postprocess

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> list[Path]:
    """Write a mask (and overlay) per image of ``cfg.input``; returns the masks written.

    Masks are 0/255 PNGs for binary models and palette PNGs of class indices otherwise, each at
    its image's size, named ``<stem>.png`` (``<stem>_overlay.jpg`` for overlays). No file that
    exists already is replaced unless ``cfg.overwrite``; an image that cannot be read is
    skipped and named at the end, after every other image has its mask.

    Raises:
        ConfigError, DataError: no model, no images, an output inside the input folder, files
            in the way, images that could not be read (after the others are written).
    """
    validate(cfg)
    post = OmegaConf.to_object(cfg.postprocess)
    source_path = Path(str(cfg.input)).expanduser()
    images = _input_images(source_path)
    output = Path(str(cfg.output)).expanduser().resolve()
    check_output(source_path, images, output, bool(cfg.overlays), bool(cfg.overwrite))
    predictor, num_classes, ignore, channels = _load_predictor(cfg)
    output.mkdir(parents=True, exist_ok=True)
    written, unreadable = [], []
    for path in progress(images, desc=f"predicting {source_path.name}", mode=cfg.progress):
        try:
            height, width = header_size(str(path))
            image, _ = read_image(str(path), None, channels, predictor.request(height, width))
        except DataError as error:
            unreadable.append(f"{path.name} ({str(error).removeprefix(f'{path}: ')})")
            continue
        probs = predictor.probabilities(image, (height, width))
        labels = postprocess(predictor.labels(probs), num_classes, post)
        mask_file = output / f"{path.stem}.png"
        with _new_file(mask_file, cfg.overwrite) as tmp:
            _write_mask(labels, num_classes, tmp)
        written.append(mask_file)
        if cfg.overlays:
            # Decoded again only when the model's input was smaller or not RGB.
            full = image if image.shape == (height, width, 3) else read_image(str(path), None, 3)[0]
            with _new_file(output / f"{path.stem}_overlay.jpg", cfg.overwrite) as tmp:
                _write_overlay(full, labels, num_classes, ignore, tmp)
    log.info("wrote %d masks to %s", len(written), output)
    if unreadable:
        raise DataError(
            f"input={source_path}: {len(unreadable)} of {len(images)} images could not be read "
            f"and have no mask: {first_few(unreadable, 3)}; the other {len(written)} masks are in "
            f"{output}"
        )
    return written


def _load_predictor(cfg: DictConfig) -> tuple[Predictor, int, int, int]:
    """The run's or file's model as a ``Predictor``, with its classes, ignore label and input
    channels (from the run's dataset, else from the model and ``cfg.resize``)."""
    with tempfile.TemporaryDirectory() as workdir:  # downloads; the model is then in memory
        source = model_source.resolve(
            cfg.model_path, cfg.run_id, str(cfg.tracking.uri), Path(workdir)
        )
    model = source.model
    dataset = model_source.run_dataset(source)
    if dataset is not None:
        policy = Policy.from_config(dataset)
        num_classes, ignore = int(dataset.num_classes), int(dataset.ignore_index)
    else:
        size = int(model.input_shape[1])
        policy = Policy(option_value(cfg.resize), size)
        num_classes, ignore = classes_of_output(int(model.output_shape[-1])), 255
    predictor = Predictor(model, policy, OmegaConf.to_object(cfg.inference))
    return predictor, num_classes, ignore, int(model.input_shape[-1])


def check_output(
    source: Path, images: list[Path], output: Path, overlays: bool, overwrite: bool
) -> None:
    """Refuse, before the model loads, an output that would mix with or replace what exists.

    Raises:
        DataError: output is a file, the input folder or inside it; a file predict would write
            exists already (unless ``overwrite``); a file to write is one of the input images.
        ConfigError: a folder that cannot be written (read-only or full file system).
    """
    if output.is_file():
        raise DataError(f"output={output}: is a file; expected a folder for the masks")
    folder = source.resolve() if source.is_dir() else None
    if folder is not None and (output == folder or folder in output.parents):
        raise DataError(
            f"output={output} is inside input={folder}: the masks would mix with (and could "
            "replace) the images; give a folder outside the input"
        )
    planned = [output / f"{p.stem}.png" for p in images]
    if overlays:
        planned += [output / f"{p.stem}_overlay.jpg" for p in images]
    inputs = {p.resolve() for p in images}
    clash = [p for p in planned if p in inputs]
    if clash:
        raise DataError(f"output={output}: the mask {clash[0].name} would replace the input image")
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        raise DataError(
            f"output={output}: {len(existing)} of the files predict writes exist already "
            f"({first_few(existing, 3)}); give an empty folder, or overwrite=true to replace them"
        )
    check_writable_folder(output, "output")


@contextlib.contextmanager
def _new_file(path: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary path that becomes ``path``; one that appeared since the check is kept."""
    try:
        with creating(path, overwrite) as tmp:
            yield tmp
    except FileExistsError:
        raise DataError(f"{path}: appeared while predicting; left as it is") from None


def _input_images(path: Path) -> list[Path]:
    images = image_files(path, "input")
    stems = [p.stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise DataError(f"input={path}: several images named {duplicates[0]}.* (masks would clash)")
    return images


def _write_mask(labels: np.ndarray, num_classes: int, path: Path) -> None:
    if num_classes == 2:
        Image.fromarray((labels > 0).astype(np.uint8) * 255).save(path, format="PNG")
        return
    image = Image.fromarray(labels, mode="P")
    palette = (label_colours(num_classes)[:, :3] * 255).astype(np.uint8)
    palette[0] = 0
    image.putpalette(palette.ravel().tolist())
    image.save(path, format="PNG")


def _write_overlay(image, labels, num_classes, ignore, path: Path) -> None:
    colours = (label_colours(num_classes, ignore)[:, :3] * 255).astype(np.float32)
    foreground = (labels > 0) & (labels != ignore)
    blended = image.astype(np.float32)
    blended[foreground] = 0.5 * blended[foreground] + 0.5 * colours[labels[foreground]]
    Image.fromarray(blended.astype(np.uint8)).save(path, format="JPEG", quality=90)
