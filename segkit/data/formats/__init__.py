"""One module per on-disk dataset format; ``FORMATS`` maps a ``dataset.name`` to its index builder.

An index builder reads file names (and TIFF page counts) only, never pixels, and returns a
``DatasetIndex``. Its schema (``segkit.config.dataset``) and its option (``conf/dataset/``) carry
the same name; a test checks the three agree.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from segkit.data.formats.dsb2018 import index_dsb2018
from segkit.data.formats.folder import index_folder
from segkit.data.formats.isbi import index_isbi
from segkit.data.formats.isic import index_isic
from segkit.data.formats.synthetic import index_synthetic
from segkit.data.formats.voc import index_voc
from segkit.data.index import DatasetIndex

FORMATS: dict[str, Callable[[DictConfig], DatasetIndex]] = {
    "synthetic": index_synthetic,
    "isic": index_isic,
    "dsb2018": index_dsb2018,
    "voc": index_voc,
    "isbi": index_isbi,
    "folder": index_folder,
}
