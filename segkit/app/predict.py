"""``python -m segkit.predict``: a mask and an overlay for every image of a folder (or one file),
each at the image's own size."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from segkit.config.validate import validate
from segkit.config.values import option_value
from segkit.core.errors import DataError
from segkit.core.scores import classes_of_output
from segkit.data.decode import header_size, read_image
from segkit.data.geometry import Policy
from segkit.data.index import is_image
from segkit.evaluation import model_source
from segkit.evaluation.figures import label_colours
from segkit.evaluation.inference import Predictor
from segkit.evaluation.postprocess import postprocess

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> list[Path]:
    """Write a mask (and overlay) per image of ``cfg.input``; returns the masks written.

    Masks are 0/255 PNGs for binary models and palette PNGs of class indices otherwise, each at
    its image's size, named ``<stem>.png`` (``<stem>_overlay.jpg`` for overlays).

    Raises:
        ConfigError, DataError: no model, no images, an output inside the input folder.
    """
    validate(cfg)
    post = OmegaConf.to_object(cfg.postprocess)
    images = _input_images(Path(str(cfg.input)).expanduser())
    output = Path(str(cfg.output)).expanduser().resolve()
    with tempfile.TemporaryDirectory() as workdir:  # downloads; the model is then in memory
        source = model_source.resolve(
            cfg.model_path, cfg.run_id, str(cfg.tracking.uri), Path(workdir)
        )
    model = source.model
    output.mkdir(parents=True, exist_ok=True)
    dataset = model_source.run_dataset(source)
    if dataset is not None:
        policy = Policy.from_config(dataset)
        num_classes, ignore = int(dataset.num_classes), int(dataset.ignore_index)
    else:
        size = int(model.input_shape[1])
        policy = Policy(option_value(cfg.resize), size)
        num_classes, ignore = classes_of_output(int(model.output_shape[-1])), 255
    predictor = Predictor(model, policy, OmegaConf.to_object(cfg.inference))
    channels = int(model.input_shape[-1])
    written = []
    for path in images:
        height, width = header_size(str(path))
        image, _ = read_image(str(path), None, channels, predictor.request(height, width))
        probs = predictor.probabilities(image, (height, width))
        labels = postprocess(predictor.labels(probs), num_classes, post)
        mask_file = output / f"{path.stem}.png"
        _write_mask(labels, num_classes, mask_file)
        written.append(mask_file)
        if cfg.overlays:
            # Decoded again only when the model's input was smaller or not RGB.
            full = image if image.shape == (height, width, 3) else read_image(str(path), None, 3)[0]
            _write_overlay(full, labels, num_classes, ignore, output / f"{path.stem}_overlay.jpg")
    log.info("wrote %d masks to %s", len(written), output)
    return written


def _input_images(path: Path) -> list[Path]:
    if path.is_file():
        if not is_image(path):
            raise DataError(f"input={path}: not an image file")
        return [path]
    if not path.is_dir():
        raise DataError(f"input={path}: no such file or folder")
    images = [p for p in sorted(path.iterdir()) if is_image(p)]
    if not images:
        raise DataError(f"input={path}: no images in the folder")
    stems = [p.stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise DataError(f"input={path}: several images named {duplicates[0]}.* (masks would clash)")
    return images


def _write_mask(labels: np.ndarray, num_classes: int, path: Path) -> None:
    if num_classes == 2:
        Image.fromarray((labels > 0).astype(np.uint8) * 255).save(path)
        return
    image = Image.fromarray(labels, mode="P")
    palette = (label_colours(num_classes)[:, :3] * 255).astype(np.uint8)
    palette[0] = 0
    image.putpalette(palette.ravel().tolist())
    image.save(path)


def _write_overlay(image, labels, num_classes, ignore, path: Path) -> None:
    colours = (label_colours(num_classes, ignore)[:, :3] * 255).astype(np.float32)
    foreground = (labels > 0) & (labels != ignore)
    blended = image.astype(np.float32)
    blended[foreground] = 0.5 * blended[foreground] + 0.5 * colours[labels[foreground]]
    Image.fromarray(blended.astype(np.uint8)).save(path, quality=90)
