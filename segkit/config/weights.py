"""``model.encoder.weights``: random initial weights, Keras' ImageNet weights, or a local file,
checked at composition (segkit downloads nothing itself)."""

from __future__ import annotations

from pathlib import Path

from segkit.core.errors import ConfigError

IMAGENET = "imagenet"
# The first bytes of every HDF5 file (the format of Keras' .h5 weights).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def encoder_weights(weights: str | None) -> str | None:
    """``model.encoder.weights`` as the encoder builder takes it: None (random), ``imagenet``,
    or the path of an existing file with ``~`` expanded.

    Raises:
        ConfigError: a path that names no file (segkit downloads nothing itself).
    """
    if weights is None or weights == IMAGENET:
        return weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"model.encoder.weights={weights}: no such file (expected null for random initial "
            "weights, imagenet for Keras' ImageNet weights, or a local no-top weights file)"
        )
    if not is_hdf5(path):
        raise ConfigError(
            f"model.encoder.weights={weights}: not a weights file (expected the HDF5 .h5 file "
            "of the encoder's no-top weights, as keras.applications saves them)"
        )
    return str(path)


def is_hdf5(path: Path) -> bool:
    """Whether ``path`` starts an HDF5 file: its signature at byte 0, 512, 1024, 2048, ...
    (where the format allows a superblock), read without h5py."""
    with path.open("rb") as handle:
        offset = 0
        while True:
            handle.seek(offset)
            head = handle.read(len(HDF5_SIGNATURE))
            if head == HDF5_SIGNATURE:
                return True
            if len(head) < len(HDF5_SIGNATURE):
                return False
            offset = 512 if offset == 0 else offset * 2
