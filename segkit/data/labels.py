"""How the pixel values of a dataset's mask files become class indices.

A ``LabelMap`` is a 256-entry lookup table from a raw mask value to a class index, to the ignore
label, or to ``INVALID`` (a value the dataset must not contain: 128 in a 0/255 mask, 7 in a
5-class mask). Colour masks map RGB triples instead. Each index builder says which map its
masks need, so the decoder, the validator and ``segkit.inspect`` read masks the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from segkit.core.errors import first_few

INVALID = -1


@dataclass(frozen=True)
class LabelMap:
    """Raw mask value -> class index (or the ignore label); anything else is invalid.

    Attributes:
        table: 256 entries, one per raw value: a class index, the ignore label or ``INVALID``.
        expected: how the valid raw values read in an error message, e.g. ``"0/255"``.
        colours: for RGB masks, ``(r, g, b, label)`` per known colour; empty for one-channel masks.
    """

    table: tuple[int, ...]
    expected: str
    colours: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def is_colour(self) -> bool:
        """Whether masks are RGB images mapped by colour."""
        return bool(self.colours)

    def apply(self, raw: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Map a raw mask ([H, W] values, or [H, W, 3] RGB) to uint8 labels.

        Args:
            raw: the mask as read from its file.
            values: ``histogram(raw)`` when the caller has it already (one-channel masks).

        Raises:
            ValueError: the mask holds values (or colours) that are not valid, listing them.
        """
        if self.is_colour:
            return self._apply_colours(raw)
        if raw.ndim != 2 or raw.dtype != np.uint8:
            raise ValueError(f"expected a one-channel 8-bit mask, got {raw.dtype} {raw.shape}")
        # A histogram and a lookup table: two passes of OpenCV, fast on 24-megapixel masks.
        bad = self.invalid_values(histogram(raw) if values is None else values)
        if bad:
            raise ValueError(self.describe_invalid(bad))
        return cv2.LUT(raw, self._lookup)

    def invalid_values(self, histogram: np.ndarray) -> list[int]:
        """The raw values with a non-zero count in a 256-bin ``histogram`` that are invalid."""
        return [int(v) for v in np.flatnonzero((histogram > 0) & self._invalid)]

    # Built once per map, not per decoded mask (the pipeline calls apply for every element).
    @cached_property
    def _invalid(self) -> np.ndarray:
        return np.asarray(self.table) == INVALID

    @cached_property
    def _lookup(self) -> np.ndarray:
        return np.where(self._invalid, 0, np.asarray(self.table)).astype(np.uint8)

    def describe_invalid(self, values: Iterable) -> str:
        """``"values 7, 128 (expected 0/255)"``: at most 8 values listed."""
        shown = [str(tuple(int(c) for c in v)) if np.ndim(v) else str(int(v)) for v in values]
        noun = "colours" if self.is_colour else "values"
        return f"invalid mask {noun} {first_few(shown, 8)} (expected {self.expected})"

    def _apply_colours(self, raw: np.ndarray) -> np.ndarray:
        if raw.ndim != 3 or raw.shape[2] < 3:
            raise ValueError(f"expected an RGB colour mask, got shape {raw.shape}")
        keys = _rgb_keys(raw[..., :3])
        known = _rgb_keys(np.array([c[:3] for c in self.colours]))
        labels = np.array([label for *_, label in self.colours], np.uint8)
        order = np.argsort(known)
        pos = np.clip(np.searchsorted(known[order], keys), 0, len(known) - 1)
        found = known[order][pos] == keys
        if not found.all():
            bad = np.unique(keys[~found])
            raise ValueError(self.describe_invalid([_key_rgb(k) for k in bad]))
        return labels[order][pos]


def histogram(values: np.ndarray) -> np.ndarray:
    """Pixels per value (256 bins, int64) of a uint8 [H, W] array."""
    counts = cv2.calcHist([np.ascontiguousarray(values)], [0], None, [256], [0, 256])
    return counts.ravel().round().astype(np.int64)


def binary() -> LabelMap:
    """0 = background, 255 or 1 = foreground (ISIC, DSB and most binary datasets)."""
    return _table({0: 0, 1: 1, 255: 1}, "0 and 1 or 255")


def isbi(foreground: str) -> LabelMap:
    """ISBI 2012 labels: 0 = membrane, 255 = cell; ``foreground`` names the class that is 1."""
    membrane = 1 if foreground == "membrane" else 0
    return _table({0: membrane, 255: 1 - membrane}, "0 (membrane) and 255 (cell)")


def indices(num_classes: int, ignore_index: int) -> LabelMap:
    """Pixel value = class index, plus the ignore label (VOC, index masks)."""
    mapping = {v: v for v in range(num_classes)}
    mapping[ignore_index] = ignore_index
    return _table(mapping, f"0..{num_classes - 1} and {ignore_index}")


def colour_table(
    colours: list[list[int]], ignore_colour: list[int] | None, ignore_index: int
) -> LabelMap:
    """RGB masks: ``colours[i]`` is class ``i``; ``ignore_colour`` reads as ``ignore_index``."""
    entries = [(int(r), int(g), int(b), i) for i, (r, g, b) in enumerate(colours)]
    if ignore_colour is not None:
        entries.append((*(int(v) for v in ignore_colour), ignore_index))
    expected = "the colours of dataset.colour_table"
    return LabelMap(table=(INVALID,) * 256, expected=expected, colours=tuple(entries))


def _table(mapping: dict[int, int], expected: str) -> LabelMap:
    table = [INVALID] * 256
    for value, label in mapping.items():
        table[value] = label
    return LabelMap(table=tuple(table), expected=expected)


def _rgb_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _key_rgb(key: int) -> tuple[int, int, int]:
    key = int(key)
    return (key >> 16) & 255, (key >> 8) & 255, key & 255
