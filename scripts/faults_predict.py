"""The fault matrix's ``segkit.predict`` cases: an output folder that is the input, ground-truth
masks where the predictions would go, a corrupt image among good ones.

Each case writes real PNG photos, runs ``python -m segkit.predict`` on a tiny untrained UNet
saved as a ``.keras`` file, and hashes every file that existed before (``scripts/fault_matrix.py``
prints the rows; ``tests/test_faults.py`` runs them).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from fault_checks import Row, error_lines, lost, one_line_error, snapshot
from PIL import Image

from helpers import REPO, user_env

RUN_TIMEOUT = 240
# A UNet small enough to build in a second; saved once per cache folder.
BUILD_MODEL = """
import sys
from helpers import TINY_MODELS, compose_config
from segkit.config.store import register_configs
from segkit.models import build_model
register_configs()
cfg = compose_config([*TINY_MODELS["unet"], "dataset.image_size=32"])
build_model(cfg.model, cfg.dataset).save(sys.argv[1])
"""


# The first activation of a Keras config, and os.system put in its place.
UNSAFE_ACTIVATION = re.compile(r'"activation": "\w+"')
OS_SYSTEM = (
    '"activation": {"module": "os", "class_name": "function", "config": "system", '
    '"registered_name": "function"}'
)


def tiny_model(cache: Path) -> Path:
    """A tiny untrained UNet as a ``.keras`` file under ``cache`` (built on first use)."""
    path = cache / "predict-unet.keras"
    if not path.is_file():
        subprocess.run(
            [sys.executable, "-c", BUILD_MODEL, str(path)],
            cwd=REPO / "tests",
            env=user_env(),
            check=True,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
    return path


def predict(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m segkit.predict args`` to the end (no MLflow store: the model is a file)."""
    return subprocess.run(
        [sys.executable, "-m", "segkit.predict", *args, "tracking=none"],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def write_photos(folder: Path, names: list[str], seed: int = 0) -> list[Path]:
    """Random RGB PNG photos of a few sizes, one per name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, name in enumerate(names):
        pixels = rng.integers(0, 256, (40 + 8 * i, 56, 3), dtype=np.uint8)
        paths.append(folder / f"{name}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def write_masks(folder: Path, names: list[str]) -> list[Path]:
    """0/255 ground-truth masks, one per name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        mask = np.zeros((40 + 8 * i, 56), np.uint8)
        mask[10:20, 10:30] = 255
        paths.append(folder / f"{name}.png")
        Image.fromarray(mask).save(paths[-1])
    return paths


def _short(line: str, root: Path) -> str:
    """A message with the case's folder left out of its paths, cut for the table."""
    return line.replace(f"{root}/", "")[:100]


def _masks(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []


def output_is_input(ctx) -> Row:
    """``output=`` the folder of PNG photos: refused before anything is written (each photo was
    overwritten by its own mask, exit 0)."""
    photos = ctx.root / "in"
    write_photos(photos, ["a", "b", "c"])
    model = tiny_model(ctx.cache)
    before = snapshot([photos])
    results = [
        predict(ctx.root, f"model={model}", f"input={photos}", f"output={out}")
        for out in (photos, photos / "masks")
    ]
    observed = "; ".join(_short(one_line_error(r), ctx.root) for r in results)
    ok = all(r.returncode == 2 and "inside input" in r.stderr for r in results)
    ok = ok and len(error_lines(results[0])) == 1 and not (photos / "masks").exists()
    return Row("", "exit 2 for the folder and a subfolder", observed, "no run", lost(before), ok)


def output_holds_masks(ctx) -> Row:
    """``output=`` the ground-truth masks folder: refused, listing the files in the way; with
    ``overwrite=true`` (the user asks) they are replaced."""
    images, truth = ctx.root / "data" / "images", ctx.root / "data" / "masks"
    names = ["a", "b", "c", "d", "e"]
    write_photos(images, names)
    write_masks(truth, names)
    model = tiny_model(ctx.cache)
    before = snapshot([images, truth])
    args = (f"model={model}", f"input={images}", f"output={truth}", "overlays=false")
    refused = predict(ctx.root, *args)
    data_lost = lost(before)
    replaced = predict(ctx.root, *args, "overwrite=true")
    changed = lost({p: d for p, d in before.items() if p.parent == truth})
    observed = (
        f"{_short(one_line_error(refused), ctx.root)}; overwrite=true: exit {replaced.returncode}"
    )
    ok = (
        refused.returncode == 2
        and len(error_lines(refused)) == 1
        and "a.png, b.png, c.png and 2 more" in refused.stderr
        and replaced.returncode == 0
        and changed == "a.png, b.png, c.png, d.png, e.png"
    )
    return Row("", "exit 2 naming them; overwrite=true: 0", observed, "no run", data_lost, ok)


def corrupt_image(ctx) -> Row:
    """A corrupt image among good ones: every good image gets its mask, the bad one is named at
    the end, exit 2 (it stopped at the bad image)."""
    photos, out = ctx.root / "in", ctx.root / "out"
    write_photos(photos, ["a", "b", "c", "d"])
    (photos / "b.png").write_bytes(b"not a png")
    model = tiny_model(ctx.cache)
    before = snapshot([photos])
    result = predict(ctx.root, f"model={model}", f"input={photos}", f"output={out}")
    masks = [m for m in _masks(out) if not m.endswith("_overlay.jpg")]
    observed = f"{_short(one_line_error(result), ctx.root)}; masks {', '.join(masks)}"
    ok = (
        result.returncode == 2
        and len(error_lines(result)) == 1
        and "1 of 4 images could not be read" in result.stderr
        and "b.png" in result.stderr
        and masks == ["a.png", "c.png", "d.png"]
    )
    return Row("", "exit 2 naming b.png; masks a, c, d", observed, "no run", lost(before), ok)


def unsafe_model(ctx) -> Row:
    """A ``.keras`` whose config names ``os.system`` as an activation: refused by Keras' safe
    mode in one line, exit 2 (it was a traceback, exit 1)."""
    good = tiny_model(ctx.cache)
    model = ctx.root / "unsafe.keras"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(model, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "config.json":
                data = UNSAFE_ACTIVATION.sub(OS_SYSTEM, data.decode(), count=1).encode()
            target.writestr(name, data)
    photos, out = ctx.root / "in", ctx.root / "out"
    write_photos(photos, ["a"])
    before = snapshot([photos, model])
    result = predict(ctx.root, f"model={model}", f"input={photos}", f"output={out}")
    observed = _short(one_line_error(result), ctx.root)
    ok = observed.startswith("exit 2") and "Could not locate function 'system'" in result.stderr
    ok = ok and not _masks(out)
    return Row("", "exit 2: refused in safe mode", observed, "no run", lost(before), ok)
