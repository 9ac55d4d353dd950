"""Reading image and mask files into numpy arrays: the one decoder every part of segkit uses.

The tf.data pipeline (through ``tf.numpy_function``), the validator and ``segkit.inspect`` all
call ``decode_sample``, so a file reads the same everywhere. Pillow reads PNG, JPEG, BMP and GIF
(palette PNGs as their palette indices, never as RGB); tifffile reads TIFF, page by page. Large
JPEGs are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, through ``Image.draft``)
whenever that still covers the size the pipeline needs, which makes 6000x4000 dermoscopy images
several times cheaper to read. EXIF orientation is ignored, for images and masks alike, so both
keep the pixel grid they were annotated on. Pillow and OpenCV release the GIL while decoding and
resizing, so parallel ``tf.data`` calls run on all cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image

from segkit.core.errors import DataError
from segkit.data.index import Sample
from segkit.data.labels import LabelMap, histogram

TIFF_SUFFIXES = (".tif", ".tiff")
# The bytes a complete file ends with (within the last few bytes, as some writers pad).
FILE_ENDS = {
    ".jpg": (b"\xff\xd9", 1024),
    ".jpeg": (b"\xff\xd9", 1024),
    ".png": (b"IEND", 64),
}
# Pillow's modes whose array is the pixel value itself (one channel).
GREY_MODES = ("L", "P", "1", "I", "I;16", "I;16B", "I;16L")


@dataclass(frozen=True)
class Decoded:
    """A decoded sample: ``image`` uint8 [H, W, C], ``mask`` uint8 labels [H, W].

    ``full_size`` is the (height, width) of the image file; ``image`` and ``mask`` are smaller
    when the JPEG was decoded at reduced scale. ``values`` counts the raw mask values at full
    size (256 bins; None for colour masks).
    """

    image: np.ndarray
    mask: np.ndarray
    full_size: tuple[int, int]
    values: np.ndarray | None


def decode_sample(
    sample: Sample, labels: LabelMap, channels: int, request: tuple[int, int] | None = None
) -> Decoded:
    """Read a sample's image and mask; the mask as class labels at the image's size.

    Args:
        sample: the files.
        labels: how the raw mask values become labels; every pixel is checked.
        channels: 1 (grayscale) or 3 (RGB; alpha is dropped).
        request: (height, width) the caller needs at least; a JPEG may then decode smaller
            than its full size. None decodes at full size.

    Raises:
        DataError: a file is unreadable or truncated, the mask's size differs from the image's,
            or the mask holds invalid values; the message names the file.
    """
    image, full_size = read_image(sample.image, sample.page, channels, request)
    raw = read_mask(sample, colour=labels.is_colour, size=full_size)
    values = None if labels.is_colour or raw.ndim != 2 else histogram(raw)
    if values is not None:
        # Every pixel is checked (the histogram), but only the pixels kept are looked up.
        raw = _resize_nearest(raw, image.shape[:2])
    try:
        mask = labels.apply(raw, values)
    except ValueError as error:
        raise DataError(f"{sample.mask_name}: {error}") from None
    mask = _resize_nearest(mask, image.shape[:2])
    return Decoded(image=image, mask=mask, full_size=full_size, values=values)


def read_image(
    path: str, page: int | None, channels: int, request: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """An image as uint8 [H, W, channels] and its full (height, width).

    Raises:
        DataError: the file is unreadable or truncated, naming it.
    """
    if Path(path).suffix.lower() in TIFF_SUFFIXES:
        array = _read_tiff(path, page)
        return _to_channels(_to_uint8(array, path), channels), array.shape[:2]
    try:
        with Image.open(path) as im:
            full_size = (im.height, im.width)
            mode = "L" if channels == 1 else "RGB"
            if request is not None and im.format == "JPEG":
                # Pillow picks the largest DCT scaling that keeps both sides >= the request.
                im.draft(mode, (request[1], request[0]))
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                array = _to_uint8(np.asarray(im), path)
            else:
                array = np.asarray(im if im.mode == mode else im.convert(mode))
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: unreadable or truncated image ({error})") from None
    return _to_channels(array, channels), full_size


def read_mask(
    sample: Sample, colour: bool = False, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The raw mask of a sample: [H, W] values (palette indices for palette PNGs) or, with
    ``colour``, [H, W, 3] RGB. A mask given as instance masks is their union (pixel maximum).

    Args:
        sample: the files.
        colour: read RGB colours instead of values.
        size: the image's (height, width) every mask file must have; None: the first file's.

    Raises:
        DataError: a file is unreadable or of the wrong size, naming it.
    """
    union = None
    for path in sample.mask_files:
        raw = _read_mask_file(path, sample.page, colour)
        expected = size or (union.shape[:2] if union is not None else raw.shape[:2])
        if raw.shape[:2] != expected:
            raise DataError(size_mismatch(sample, path, raw.shape, expected))
        if union is None:
            union = np.array(raw) if len(sample.mask_files) > 1 else raw
        else:
            np.maximum(union, raw, out=union)
    return union


def header_size(path: str, page: int | None = None) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding pixels.

    Raises:
        DataError: the file is not a readable image, naming it.
    """
    try:
        if Path(path).suffix.lower() in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                shape = tif.pages[page or 0].shape
            return int(shape[0]), int(shape[1])
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError, SyntaxError, IndexError, tifffile.TiffFileError) as error:
        raise DataError(f"{path}: unreadable image header ({error})") from None


def check_file_end(path: str) -> str | None:
    """A problem if a JPEG or PNG file does not end as a complete one does (a cut download)."""
    end = FILE_ENDS.get(Path(path).suffix.lower())
    if end is None:
        return None
    marker, window = end
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - window))
        if marker not in f.read():
            return f"{path}: truncated file (no end marker {marker!r})"
    return None


def _read_mask_file(path: str, page: int | None, colour: bool) -> np.ndarray:
    if Path(path).suffix.lower() in TIFF_SUFFIXES:
        return _to_uint8(_read_tiff(path, page), path, scale=False)
    try:
        with Image.open(path) as im:
            if colour:
                return np.asarray(im.convert("RGB"))
            # OpenCV decodes an 8-bit grayscale PNG straight into an array; Pillow's array
            # conversion copies the pixels once more, doubling the cost of a 24-megapixel mask.
            opencv = im.mode == "L" and im.format == "PNG"
            if not opencv:
                keep = im.mode in GREY_MODES or im.mode == "LA"
                array = np.asarray(im if keep else im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: unreadable or truncated mask ({error})") from None
    if opencv:
        array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if array is None:
            raise DataError(f"{path}: unreadable or truncated mask (corrupt PNG data)")
    if array.ndim == 2:
        return _to_uint8(array, path, scale=False)
    if array.shape[2] == 2:  # gray + alpha
        return np.ascontiguousarray(array[..., 0])
    # An RGB file whose channels agree is a grayscale mask saved as RGB.
    if (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all():
        return np.ascontiguousarray(array[..., 0])
    raise DataError(
        f"{path}: colour mask, but this dataset expects one value per pixel "
        "(for a folder dataset of colour masks set dataset.mask_format=colour)"
    )


def _resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape[:2] == size:
        return mask
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def _read_tiff(path: str, page: int | None) -> np.ndarray:
    try:
        return tifffile.imread(path, key=page or 0)
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as error:
        raise DataError(f"{path}: unreadable TIFF page {page or 0} ({error})") from None


def _to_uint8(array: np.ndarray, path: str, scale: bool = True) -> np.ndarray:
    """uint8 pixels: 16-bit images are scaled to 0..255; masks (``scale=False``) must fit."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not scale:
        if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255:
            return array.astype(np.uint8)
        raise DataError(f"{path}: mask values outside 0..255 ({array.dtype})")
    # 16-bit images (Pillow may hold them as 32-bit integers) map 0..65535 onto 0..255.
    if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 65535:
        return (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    raise DataError(f"{path}: unsupported pixel type {array.dtype} (expected 8 or 16 bit)")


def _to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """[H, W, channels]: alpha dropped, gray repeated to RGB or RGB turned gray."""
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] in (2, 4):  # gray+alpha, RGBA
        array = array[..., : array.shape[2] - 1]
    if array.shape[2] == channels:
        return np.ascontiguousarray(array)
    if channels == 3:
        return np.repeat(array, 3, axis=2)
    return cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)[..., None]


def size_mismatch(sample: Sample, mask: str, mask_shape, image_shape) -> str:
    """The problem of a mask file whose size differs from its image's (shapes as (h, w, ...))."""
    return (
        f"{sample.describe(mask)}: mask is {_size(mask_shape)} but image "
        f"{sample.describe(sample.image)} is {_size(image_shape)}"
    )


def _size(shape) -> str:
    return f"{shape[1]}x{shape[0]}"
