"""Training speed per model: segkit's ``train()`` against a bare ``model.fit``; float32 vs mixed.

For every model and precision policy, in one process and side by side (timings on a shared
machine drift, so only compare rows of one run), two trainings of the same model on the same
tf.data input:

- ``segkit``: ``Run(cfg).execute()``, i.e. ``segkit.app.run.train``: the configured loss, the
  confusion-matrix metrics, validation, checkpoints, backups, everything; its speed is the
  ``train/images_per_second`` it logs;
- ``bare``: the model from the same builder and the same ``make_dataset`` batches, compiled with
  Adam and Keras' own cross-entropy and no metrics, fitted with nothing but a timer.

Both are timed by ``segkit.training.callbacks.Throughput`` (training batches only, validation
excluded); the first epoch (graph tracing) is dropped and the best of the other epochs, over all
rounds, is reported: other jobs on the machine can only slow an epoch down, so the best one is
the closest to the speed of a quiet machine (the reasoning of ``timeit``).

    python scripts/bench_train.py                        # 3 models x float32/auto, 128 px
    python scripts/bench_train.py --models unet --epochs 4 --precisions float32,mixed_bfloat16
    python scripts/bench_train.py --precisions float32 \
        --models encoder_unet:mobilenetv2,encoder_unet:resnet50,encoder_unet:efficientnetb0

A model ``encoder_unet:<name>`` is ``model=encoder_unet model.encoder.name=<name>`` (random
weights: the speed does not depend on them).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level)
from omegaconf import OmegaConf  # noqa: E402

from segkit.app import run_steps  # noqa: E402
from segkit.app.cli import CONF_DIR  # noqa: E402
from segkit.app.run import Run  # noqa: E402
from segkit.config.store import register_configs  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.training import precision  # noqa: E402
from segkit.training.callbacks import Throughput  # noqa: E402
from segkit.training.fit import steps_per_epoch  # noqa: E402
from segkit.training.precision import precision_policy  # noqa: E402


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def steady(images_per_second: list[float]) -> list[float]:
    """The epochs after the first (which traces the graphs)."""
    return images_per_second[1:] or images_per_second


def bench_segkit(cfg, policy: str) -> list[float]:
    run = Run(cfg)
    run.execute()
    return steady(run.history["train/images_per_second"])


def bench_bare(cfg, policy: str) -> list[float]:
    tcfg = cfg.trainer
    keras.utils.set_random_seed(int(cfg.seed))
    with precision_policy(policy):
        model = build_model(cfg.model, cfg.dataset)
        binary = model.output_shape[-1] == 1
        model.compile(
            optimizer=keras.optimizers.Adam(float(tcfg.optimizer.lr)),
            loss=keras.losses.BinaryCrossentropy()
            if binary
            else keras.losses.SparseCategoricalCrossentropy(),
        )
        # The batches segkit trains on (a Run of its own: the segkit run's directory is done),
        # a stream of all epochs that fit reads with steps_per_epoch, as segkit does.
        run = Run(OmegaConf.merge(cfg, {"output_dir": f"{cfg.output_dir}-bare"}))
        steps = steps_per_epoch(
            len(run.index.splits["train"]), int(tcfg.batch_size), tcfg.limit_train_batches
        )
        timer = Throughput(int(tcfg.batch_size))
        history = model.fit(
            run_steps.train_dataset(run),
            epochs=int(tcfg.epochs),
            steps_per_epoch=steps,
            callbacks=[timer],
            verbose=0,
            shuffle=False,
        )
    return steady(history.history["images_per_second"])


BENCHES = {"segkit": bench_segkit, "bare": bench_bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="unet,improved_unet,mobilenet_unet")
    parser.add_argument("--precisions", default="float32,auto")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--limit-batches", type=int, default=None, help="batches per epoch")
    parser.add_argument("--repeats", type=int, default=1, help="rounds, alternating the order")
    parser.add_argument("--cache-dir", default=str(Path("~/.cache/segkit").expanduser()))
    parser.add_argument("overrides", nargs="*", help="more config overrides, key=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    register_configs()
    models = args.models.split(",")
    policies = [precision.resolve(p)[0] for p in args.precisions.split(",")]
    speeds: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for model, policy in itertools.product(models, policies):
                cfg = bench_config(args, model, policy, Path(tmp) / f"{model}-{policy}-{repeat}")
                # Alternate which goes first: the load of a shared machine drifts.
                order = ["segkit", "bare"] if repeat % 2 == 0 else ["bare", "segkit"]
                for kind in order:
                    measured = BENCHES[kind](cfg, policy)
                    speeds.setdefault((model, policy, kind), []).extend(measured)
                    print(f"  {model} {policy} {kind}: " + " ".join(f"{v:.1f}" for v in measured))
    rows = [
        (model, policy, *(max(speeds[model, policy, k]) for k in BENCHES))
        for model, policy in itertools.product(models, policies)
    ]
    print_table(rows, args)


def model_overrides(model: str) -> list[str]:
    """``model=<model>``, or for ``encoder_unet:<name>`` the encoder-UNet on that encoder."""
    family, _, encoder = model.partition(":")
    return [f"model={family}", *([f"model.encoder.name={encoder}"] if encoder else [])]


def bench_config(args, model: str, policy: str, output_dir: Path):
    return compose(
        [
            *model_overrides(model),
            f"trainer.precision={policy}",
            f"trainer.epochs={args.epochs}",
            f"trainer.batch_size={args.batch_size}",
            f"trainer.limit_train_batches={args.limit_batches or 'null'}",
            f"dataset.image_size={args.image_size}",
            f"cache_dir={args.cache_dir}",
            f"output_dir={output_dir}",
            "tracking=none",
            "trainer.verbose=0",
            *args.overrides,
        ]
    )


def print_table(rows: list[tuple[str, str, float, float]], args) -> None:
    print(
        f"\nTraining images/s at {args.image_size} px, batch {args.batch_size}: best of epochs "
        f"2-{args.epochs} in {args.repeats} round(s) ({os.cpu_count()} CPUs, "
        f"keras {keras.__version__})"
    )
    header = ("model", "precision", "segkit", "bare", "segkit/bare", "vs float32")
    width = max(16, *(len(row[0]) + 2 for row in rows))
    print(f"{header[0]:<{width}}{header[1]:<16}" + "".join(f"{h:>13}" for h in header[2:]))
    float32 = {model: segkit for model, policy, segkit, _ in rows if policy == "float32"}
    for model, policy, segkit, bare in rows:
        base = float32.get(model)
        speedup = f"{segkit / base:.2f}x" if base else "-"
        print(
            f"{model:<{width}}{policy:<16}{segkit:>13.1f}{bare:>13.1f}{segkit / bare:>13.2f}"
            f"{speedup:>13}"
        )


if __name__ == "__main__":
    main()
