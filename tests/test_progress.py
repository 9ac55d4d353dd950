"""Progress of long steps: a bar on a terminal, ~10% log lines otherwise, nothing when off."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import select
import struct
import sys
import termios

import pytest
from hydra.errors import ConfigCompositionException

from helpers import TINY_MODELS, compose_config
from segkit.app.cli import one_line
from segkit.app.predict import predict
from segkit.core import progress as progress_module
from segkit.core.progress import ProgressMode, progress
from segkit.data import build_index
from segkit.data import labels as label_maps
from segkit.data.loader import SampleLoader
from segkit.data.pipeline import make_dataset
from segkit.data.validate import validate_dataset
from segkit.models import build_model
from tiny_datasets import rgb, write_folder, write_image

LOGGER = "segkit.core.progress"


class FakeTerminal(io.StringIO):
    """What tqdm writes to, claiming to be a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def lines(caplog):
    """The messages logged by the progress module so far (a function, read when called)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    return lambda: [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_log_mode_gives_a_line_every_ten_percent_and_a_final_line(lines):
    assert list(progress(range(100), desc="work", mode="log")) == list(range(100))
    logged = lines()
    assert len(logged) == 10, logged
    assert [line.split(" (")[0] for line in logged] == [f"work: {p}%" for p in range(10, 101, 10)]
    assert logged[2].startswith("work: 30% (30/100) ") and logged[2].endswith(" s")
    assert logged[-1].startswith("work: 100% (100/100) ")


def test_small_and_unknown_totals_and_a_loop_left_early(lines, monkeypatch):
    list(progress(range(3), desc="few", mode=ProgressMode.log))
    assert [line.split(" (")[0] for line in lines()] == ["few: 33%", "few: 66%", "few: 100%"]
    list(progress(range(0), desc="none", mode="log"))  # nothing to do: nothing said
    assert not any(line.startswith("none") for line in lines())
    for i in progress(range(50), desc="cut", mode="log"):
        if i == 24:
            break
    assert lines()[-1].startswith("cut: stopped at 48% (24/50) ")
    # A generator has no length: a line every LOG_EVERY_S seconds, then the count and time.
    monkeypatch.setattr(progress_module, "LOG_EVERY_S", 0.0)
    list(progress((i for i in range(4)), desc="stream", mode="log"))
    streamed = [line for line in lines() if line.startswith("stream")]
    assert len(streamed) == 5 and streamed.pop().startswith("stream: 4 done, ")
    assert all(line.startswith(f"stream: {n} so far, ") for n, line in enumerate(streamed, 1))


def test_off_is_silent_and_auto_shows_a_bar_on_a_terminal_only(lines, monkeypatch):
    terminal = FakeTerminal()
    assert list(progress(range(20), desc="quiet", mode="off", stream=terminal)) == list(range(20))
    assert lines() == [] and terminal.getvalue() == ""
    list(progress(range(20), desc="bar", mode="auto", stream=terminal))
    assert "bar: 100%" in terminal.getvalue() and "20/20" in terminal.getvalue()
    assert lines() == []  # the bar instead of log lines
    # Not a terminal (a log file, CI): log lines, nothing written to the stream.
    log_file = io.StringIO()
    list(progress(range(20), desc="logged", mode="auto", stream=log_file))
    assert log_file.getvalue() == "" and lines()[-1].startswith("logged: 100% (20/20)")
    # Without a stream, auto asks the sys.stderr of the moment.
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    list(progress(range(5), desc="stderr", mode="auto"))
    assert "stderr: 100%" in sys.stderr.getvalue()


def test_a_real_pseudo_terminal_gets_the_bar():
    main, secondary = os.openpty()
    try:
        # A terminal window of 24 rows of 80 columns (a new pty has none: tqdm then draws nothing).
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        with os.fdopen(secondary, "w", closefd=False) as terminal:
            list(progress(range(8), desc="pty", mode="auto", stream=terminal))
        shown = b""
        while select.select([main], [], [], 0.5)[0]:
            shown += os.read(main, 4096)
        assert b"pty: 100%" in shown and b"8/8" in shown
    finally:
        os.close(main)
        os.close(secondary)


@pytest.mark.parametrize("command", ["train", "inspect", "evaluate", "predict"])
def test_every_command_has_the_setting_and_refuses_an_unknown_value(command):
    required = ["input=a", "output=b"] if command == "predict" else []
    assert compose_config(required, name=command).progress == ProgressMode.auto
    assert compose_config([*required, "progress=off"], name=command).progress == "off"
    with pytest.raises(ConfigCompositionException) as error:
        compose_config([*required, "progress=loud"], name=command)
    message = one_line(error.value)
    assert message.startswith("invalid value for progress: ") and "\n" not in message
    assert "auto" in message and "off" in message


def test_dataset_validation_and_disk_cache_filling_report_progress(tmp_path, lines):
    root = write_folder(tmp_path / "data", n=20)
    cfg = compose_config(
        [
            "dataset=folder",
            f"dataset.images={root / 'images'}",
            f"dataset.masks={root / 'masks'}",
            "dataset.image_size=32",
            "dataset.cache=disk",
        ]
    ).dataset
    index = build_index(cfg)
    validate_dataset(index, cfg, progress_mode="log")
    validated = [line for line in lines() if line.startswith("validating folder (full): ")]
    assert len(validated) == 10 and "100% (20/20)" in validated[-1]
    validate_dataset(index, cfg, progress_mode="off")
    assert len(lines()) == 10

    samples = index.samples()
    loader = SampleLoader(samples, label_maps.binary(), cfg, training=False, cache_dir=tmp_path)
    assert loader.fill(progress_mode="log") == len(samples)
    assert len(list((tmp_path / "decoded").rglob("*.npz"))) == len(samples)
    filled = [line for line in lines() if line.startswith("filling the disk cache: ")]
    assert filled[-1].startswith(f"filling the disk cache: 100% ({len(samples)}/{len(samples)})")
    assert loader.fill(progress_mode="log") == 0  # all cached: nothing decoded, nothing said
    assert len([line for line in lines() if line.startswith("filling")]) == len(filled)
    # The pipeline fills the cache before its first batch: what a limited evaluation reads.
    make_dataset(
        samples,
        cfg,
        batch_size=4,
        training=False,
        seed=0,
        limit_batches=2,
        cache_dir=tmp_path / "other",
    )
    assert len(list((tmp_path / "other" / "decoded").rglob("*.npz"))) == 8


def test_predict_on_a_folder_logs_progress_unless_off(tmp_path, lines, monkeypatch):
    model_cfg = compose_config([*TINY_MODELS["unet"], "dataset.image_size=32"])
    model_file = tmp_path / "tiny.keras"
    build_model(model_cfg.model, model_cfg.dataset).save(model_file)
    (tmp_path / "images").mkdir()
    for i in range(10):
        write_image(tmp_path / "images" / f"photo{i}.png", rgb(i, 40, 48))
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, as in a log file

    def run(output: str, *overrides: str) -> list:
        cfg = compose_config(
            [
                f"model_path={model_file}",
                f"input={tmp_path / 'images'}",
                f"output={tmp_path / output}",
                "overlays=false",
                "tracking=none",
                f"cache_dir={tmp_path / 'cache'}",
                *overrides,
            ],
            name="predict",
        )
        return predict(cfg)

    assert len(run("auto")) == 10
    logged = [line for line in lines() if line.startswith("predicting images: ")]
    assert len(logged) == 10 and logged[-1].startswith("predicting images: 100% (10/10) ")
    assert len(run("off", "progress=off")) == 10
    assert len(lines()) == len(logged)
