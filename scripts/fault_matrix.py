"""Run every fault segkit must survive, for real, and print one row per case.

Each case runs ``python -m segkit.train`` in subprocesses on a tiny synthetic dataset with a
SQLite MLflow store in a fresh folder, inflicts its fault (SIGKILL or SIGTERM at a random step, a
NaN from an absurd learning rate, corrupt files in a copy of the dataset, bad overrides, a cut
backup, a memory limit) and reads back what happened: the exit status and message, the MLflow
run's status, and whether any file that existed before (a checkpoint, an earlier run, the
dataset copy) was changed or removed ("data lost", which must be "none").

    .venv/bin/python scripts/fault_matrix.py              # every case (about 5 min on 2 cores)
    .venv/bin/python scripts/fault_matrix.py --fast       # the cases that train nothing
    .venv/bin/python scripts/fault_matrix.py --only sigkill_resume,nan_loss

Exit status 1 when a case's observed outcome differs from the expected one. The case functions
are also the tests of tests/test_faults.py (the training ones marked slow).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

import faults_predict  # noqa: E402
from fault_checks import (  # noqa: E402
    Row,
    Skipped,
    error_lines,
    lost,
    one_line_error,
    snapshot,
    tmpfs,
)

from helpers import TINY, user_env  # noqa: E402
from segkit.data.formats.synthetic import dataset_dir, ensure_synthetic  # noqa: E402

SYNTHETIC = (24, 0, 48, 72)  # TINY's dataset: num_samples, seed, min_side, max_side
RUN_TIMEOUT = 240
# Runs long enough to be signalled mid-training: 6 epochs of 8 steps.
LONGER = ("trainer.epochs=6", "trainer.limit_train_batches=null")
EPOCHS = list(range(6))


@dataclass
class Context:
    """A case's own folder (cwd of its runs, its MLflow store) and the shared dataset cache."""

    root: Path
    cache: Path
    rng: random.Random

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    def overrides(self, output: str = "run", *extra: str) -> list[str]:
        """A seconds-long run into ``root/<output>``, logging to this case's store."""
        return [
            "trainer=smoke",
            *TINY,
            f"cache_dir={self.cache}",
            f"output_dir={self.root / output}",
            f"tracking.uri=sqlite:///{self.db}",
            f"tracking.artifact_location={self.root / 'artifacts'}",
            *extra,
        ]

    def train(self, *args: str, memory_limit: int | None = None) -> subprocess.CompletedProcess:
        """``python -m segkit.train args`` to the end."""
        return subprocess.run(
            [sys.executable, "-m", "segkit.train", *args],
            cwd=self.root,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            preexec_fn=_limit_memory(memory_limit) if memory_limit else None,
        )

    def start(self, *args: str) -> subprocess.Popen:
        """``python -m segkit.train args`` in the background."""
        return subprocess.Popen(
            [sys.executable, "-m", "segkit.train", *args],
            cwd=self.root,
            env=user_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def runs(self) -> list:
        """The MLflow runs in this case's store, oldest first."""
        if not self.db.exists():
            return []
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{self.db}")
        experiments = client.search_experiments()
        found = client.search_runs([e.experiment_id for e in experiments]) if experiments else []
        return sorted(found, key=lambda r: r.info.start_time)

    def steps(self, run_id: str, metric: str = "train/loss") -> list[int]:
        """The steps ``metric`` was logged at, in logging order."""
        from mlflow import MlflowClient

        history = MlflowClient(f"sqlite:///{self.db}").get_metric_history(run_id, metric)
        return sorted(m.step for m in history)

    def wait_for_file(self, path: Path, timeout: float = 120) -> bool:
        """Wait until ``path`` exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                return True
            time.sleep(0.05)
        return False


def _limit_memory(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def statuses(ctx: Context) -> str:
    return ",".join(r.info.status for r in ctx.runs()) or "no run"


# ----------------------------------------------------------------------------------- cases


def bad_override(override: str, names: str) -> Callable[[Context], Row]:
    """A case: ``override`` must stop the command with one line naming ``names``."""

    def case(ctx: Context) -> Row:
        result = ctx.train(*ctx.overrides("run", override))
        observed = one_line_error(result)
        ok = observed.startswith("exit 2") and names in result.stderr and not ctx.db.exists()
        return Row("", f"exit 2 naming {names}", observed, statuses(ctx), "none", ok)

    return case


def weights_not_hdf5(ctx: Context) -> Row:
    """``model.encoder.weights`` naming a file of random bytes: one line at composition (it was
    an h5py traceback after the run had opened, then FAILED)."""
    weights = ctx.root / "encoder.weights.h5"
    weights.write_bytes(ctx.rng.randbytes(5000))
    before = snapshot([weights])
    tiny_unet = [o for o in ctx.overrides("run") if not o.startswith("model.")]
    args = [*tiny_unet, "model=mobilenet_unet", f"model.encoder.weights={weights}"]
    result = ctx.train(*args)
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "not a weights file" in result.stderr
    ok = ok and not ctx.db.exists()
    return Row("", "exit 2: not a weights file", observed, statuses(ctx), lost(before), ok)


def output_dir_is_file(ctx: Context) -> Row:
    """``output_dir=`` an existing file: one line saying so, the file untouched (the message
    talked of moving .segkit/ folders that do not exist)."""
    target = ctx.root / "notes.txt"
    target.write_text("a file, not a folder")
    before = snapshot([target])
    result = ctx.train(*ctx.overrides("run", f"output_dir={target}"))
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "is a file" in result.stderr and not ctx.runs()
    return Row("", "exit 2: is a file", observed, statuses(ctx), lost(before), ok)


def output_read_only(ctx: Context) -> Row:
    """``output_dir`` (train) and ``output`` (predict) on a read-only file system: one line
    each, no run (both were OSError tracebacks, exit 1)."""
    model = faults_predict.tiny_model(ctx.cache)
    photos = faults_predict.write_photos(ctx.root / "in", ["a"])[0].parent
    with tmpfs(ctx.root / "readonly", "ro") as readonly:
        trained = ctx.train(*ctx.overrides("run", f"output_dir={readonly / 'run'}"))
        predicted = faults_predict.predict(
            ctx.root, f"model={model}", f"input={photos}", f"output={readonly / 'masks'}"
        )
    results = (trained, predicted)
    observed = "; ".join(one_line_error(r)[-60:] for r in results)
    ok = all(r.returncode == 2 and "Read-only file system" in r.stderr for r in results)
    ok = ok and all(len(error_lines(r)) == 1 for r in results) and not ctx.runs()
    return Row("", "exit 2 twice: read-only", observed, statuses(ctx), "none", ok)


def cache_full_synthetic(ctx: Context) -> Row:
    """``cache_dir`` on a full disk where the synthetic dataset is to be generated: one line
    naming dataset.root (OpenCV's failed writes used to be ignored)."""
    with tmpfs(ctx.root / "full", "size=40k") as full:
        result = ctx.train(*ctx.overrides("run", f"cache_dir={full}"))
        left = sorted(p.name for p in full.rglob("*") if p.is_file())
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "cannot write the synthetic dataset" in result.stderr
    ok = ok and not ctx.runs() and not left
    return Row("", "exit 2 naming dataset.root", observed, statuses(ctx), "none", ok)


def cache_full(ctx: Context) -> Row:
    """``dataset.cache=disk`` with ``cache_dir`` on a full disk: training goes on uncached and
    says so once (it was a TensorFlow "Graph execution error", FAILED)."""
    dataset = f"dataset.root={ctx.cache / 'synthetic'}"
    with tmpfs(ctx.root / "full", "size=40k") as full:
        args = ctx.overrides("run", f"cache_dir={full}", dataset, "dataset.cache=disk")
        result = ctx.train(*args)
    log = result.stdout + result.stderr  # Hydra's job log goes to stdout
    warnings = log.count("cache_dir: cannot write decoded samples")
    observed = f"exit {result.returncode}, {warnings} warning(s) naming cache_dir"
    ok = result.returncode == 0 and warnings == 1 and statuses(ctx) == "FINISHED"
    return Row("", "exit 0, FINISHED, one warning", observed, statuses(ctx), "none", ok)


def output_full(ctx: Context) -> Row:
    """``output_dir`` on a disk that fills up while checkpoints are written: FAILED with the
    reason, one line, the checkpoint written before intact (it was chained tracebacks, then a
    segmentation fault)."""
    # Room for the first best checkpoint and backup of the tiny model, not for the next ones.
    with tmpfs(ctx.root / "full", "size=1300k") as full:
        result = ctx.train(*ctx.overrides("run", f"output_dir={full / 'run'}", *LONGER))
        best = full / "run" / "checkpoints" / "best.keras"
        kept = best.exists()
        intact = kept and zipfile.ZipFile(best).testzip() is None
    runs = ctx.runs()
    reason = runs[0].data.tags.get("failure_reason", "") if runs else ""
    observed = f"{one_line_error(result)[:70]}; best.keras {'intact' if intact else 'CUT or none'}"
    ok = observed.startswith("exit 2") and "No space left" in reason and intact
    ok = ok and statuses(ctx) == "FAILED"
    return Row("", "exit 2, FAILED with the reason", observed, statuses(ctx), "none", ok)


def store_not_sqlite(ctx: Context) -> Row:
    """``./mlflow.db`` that is no SQLite file: one line, the file untouched (it was an
    SQLAlchemy traceback, exit 1)."""
    ctx.db.write_text("notes that happen to be called mlflow.db")
    before = snapshot([ctx.db])
    result = ctx.train(*ctx.overrides("run"))
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "not an SQLite database" in result.stderr
    return Row("", "exit 2: not an SQLite database", observed, "no run", lost(before), ok)


def fresh_store_race(ctx: Context) -> Row:
    """Two runs started at the same moment in a folder without ``mlflow.db``: both FINISHED in
    one readable store (MLflow's own table creation raced: one or both died)."""
    procs = [ctx.start(*ctx.overrides(f"run{i}")) for i in range(2)]
    codes = [p.wait(timeout=RUN_TIMEOUT) for p in procs]
    for p in procs:
        p.communicate()
    status = statuses(ctx)
    ok = codes == [0, 0] and status == "FINISHED,FINISHED"
    return Row("", "exit 0 twice, both FINISHED", f"exits {codes}", status, "none", ok)


def corrupt_dataset(ctx: Context) -> Row:
    """Corrupt files in a copy of the dataset: validation lists them before any run starts."""
    cache = ctx.root / "cache"
    shutil.copytree(ctx.cache, cache)
    folder = dataset_dir(cache / "synthetic", *SYNTHETIC)
    image = sorted(folder.rglob("*.jpg"))[0]
    image.write_bytes(image.read_bytes()[:200])  # cut short, as by a failed copy
    mask = sorted(folder.rglob("*_segmentation.png"))[1]
    mask.write_bytes(b"not a png")
    before = snapshot([cache])
    result = ctx.train(*ctx.overrides("run", f"cache_dir={cache}"))
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "2 problems" in result.stderr and not ctx.runs()
    return Row("", "exit 2 listing both files", observed, statuses(ctx), lost(before), ok)


def corrupt_dataset_unvalidated(ctx: Context) -> Row:
    """Corrupt every image with validation off: decoding fails mid-training, run FAILED."""
    cache = ctx.root / "cache"
    shutil.copytree(ctx.cache, cache)
    for path in dataset_dir(cache / "synthetic", *SYNTHETIC).rglob("*.jpg"):
        path.write_bytes(b"not a jpeg")
    before = snapshot([cache])
    result = ctx.train(*ctx.overrides("run", f"cache_dir={cache}", "dataset.validate=off"))
    runs = ctx.runs()
    reason = runs[0].data.tags.get("failure_reason", "") if runs else ""
    ok = result.returncode != 0 and statuses(ctx) == "FAILED" and bool(reason)
    observed = f"exit {result.returncode}; failure_reason: {reason[:60]}"
    return Row(
        "", "non-zero exit, run FAILED with reason", observed, statuses(ctx), lost(before), ok
    )


def nan_loss(ctx: Context) -> Row:
    """An absurd learning rate: NaN loss stops the run FAILED, tagged with reason and epoch."""
    args = ctx.overrides("run", "trainer.optimizer.name=sgd", "trainer.optimizer.lr=1e30")
    result = ctx.train(*args)
    runs = ctx.runs()
    tags = runs[0].data.tags if runs else {}
    nan_model = (ctx.root / "run" / "checkpoints" / "best.keras").exists()
    observed = (
        f"{one_line_error(result)[:60]}; diverged.epoch={tags.get('diverged.epoch')}; "
        f"checkpoint of the NaN model: {'WRITTEN' if nan_model else 'none'}"
    )
    ok = (
        not nan_model
        and result.returncode == 2
        and "diverged" in tags.get("failure_reason", "")
        and tags.get("diverged.epoch") == "1"
        and statuses(ctx) == "FAILED"
    )
    return Row("", "exit 2, FAILED, tags reason + epoch 1", observed, statuses(ctx), "none", ok)


def mixed_float16(ctx: Context) -> Row:
    """float16 with loss scaling: skipped steps (scale underflow/overflow) are no divergence."""
    result = ctx.train(*ctx.overrides("run", "trainer.precision=mixed_float16", "trainer.epochs=2"))
    ok = result.returncode == 0 and statuses(ctx) == "FINISHED"
    return Row("", "exit 0, FINISHED", f"exit {result.returncode}", statuses(ctx), "none", ok)


def truncated_backup(ctx: Context) -> Row:
    """A backup cut short (a disk fault; segkit writes atomically): one line, nothing touched."""
    out = ctx.root / "run"
    backup = out / "backup"
    backup.mkdir(parents=True)
    weights = backup / "epoch0001-batch00000.weights.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    (backup / "position.json").write_text(
        json.dumps({"epoch": 1, "batch": 0, "weights": weights.name})
    )
    before = snapshot([out])
    result = ctx.train(*ctx.overrides("run"))
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "resume=false" in result.stderr and not ctx.runs()
    return Row("", "exit 2 naming the backup", observed, statuses(ctx), lost(before), ok)


def finished_run(ctx: Context) -> Row:
    """A finished run's folder is refused, with resume=false too."""
    out = ctx.root / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "best.keras").write_bytes(b"a finished run's model")
    (out / ".segkit").mkdir()
    (out / ".segkit" / "run.json").write_text(json.dumps({"status": "FINISHED"}))
    before = snapshot([out])
    results = [ctx.train(*ctx.overrides("run", f"resume={v}")) for v in ("true", "false")]
    observed = "; ".join(one_line_error(r)[-60:] for r in results)
    ok = all(r.returncode == 2 and "finished run" in r.stderr for r in results)
    return Row("", "exit 2 twice (refused)", observed, statuses(ctx), lost(before), ok)


def _interrupt_and_resume(ctx: Context, sig: signal.Signals, extra: list[str]) -> tuple:
    """Start a run, signal it at a random step after its first epoch, rerun it unchanged."""
    args = ctx.overrides("run", *LONGER, *extra)
    proc = ctx.start(*args)
    ready = ctx.wait_for_file(ctx.root / "run" / "backup" / "position.json")
    time.sleep(ctx.rng.uniform(0.0, 1.0))
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    first = [(r.info.run_id, r.info.status) for r in ctx.runs()]
    resumed = ctx.train(*args)
    return ready, proc.returncode, stderr, first, resumed


def sigterm_resume(ctx: Context) -> Row:
    """SIGTERM (Slurm's pre-emption notice): backup, KILLED, exit 130; the rerun resumes."""
    ready, code, stderr, first, resumed = _interrupt_and_resume(ctx, signal.SIGTERM, [])
    runs = ctx.runs()
    steps = ctx.steps(runs[-1].info.run_id) if runs else []
    observed = (
        f"exit {code} ({first[0][1] if first else 'no run'}), rerun exit {resumed.returncode}, "
        f"{len(runs)} run(s), epochs {steps}"
    )
    ok = (
        ready
        and code == 130
        and "to resume:" in stderr
        and first[:1]
        and first[0][1] == "KILLED"
        and resumed.returncode == 0
        and len(runs) == 1
        and steps == EPOCHS
        and runs[0].info.status == "FINISHED"
    )
    return Row(
        "",
        "130 KILLED; rerun: same run FINISHED, epochs 0-5",
        observed,
        statuses(ctx),
        "none",
        bool(ok),
    )


def sigkill_resume(ctx: Context) -> Row:
    """SIGKILL at a random step (backups every step): the rerun continues the same MLflow run
    and ends with the weights of an uninterrupted run (trainer.deterministic=true)."""
    extra = ["trainer.deterministic=true", "trainer.backup_every_steps=1"]
    reference = ctx.train(
        *ctx.overrides(
            "reference",
            *LONGER,
            "tracking.experiment=reference",
            *extra,
        )
    )
    ready, code, _, first, resumed = _interrupt_and_resume(ctx, signal.SIGKILL, extra)
    runs = {r.data.tags.get("output_dir", "").rsplit("/", 1)[-1]: r for r in ctx.runs()}
    run, ref = runs.get("run"), runs.get("reference")
    same_weights = bool(run and ref) and (
        run.data.tags.get("weights.sha256") == ref.data.tags.get("weights.sha256")
    )
    steps = ctx.steps(run.info.run_id) if run else []
    left = [status for run_id, status in first if ref is None or run_id != ref.info.run_id]
    observed = (
        f"SIGKILL left {left[0] if left else 'no run'}; rerun (from "
        f"{run.data.tags.get('resumed.from') if run else '?'}) exit {resumed.returncode}, "
        f"epochs {steps}, weights {'equal' if same_weights else 'DIFFER'}"
    )
    if not same_weights and run and ref:
        observed += (
            f" ({run.data.tags.get('weights.sha256', '')[:8]} vs "
            f"{ref.data.tags.get('weights.sha256', '')[:8]})"
        )
    ok = (
        ready
        and reference.returncode == 0
        and code == -signal.SIGKILL
        and len(first) == 2  # the reference and the killed run
        and resumed.returncode == 0
        and len(ctx.runs()) == 2
        and steps == EPOCHS
        and run.info.status == "FINISHED"
        and same_weights
    )
    return Row(
        "",
        "same run FINISHED, epochs 0-5, weights equal",
        observed,
        run.info.status if run else "no run",
        "none",
        bool(ok),
    )


def fresh_start(ctx: Context) -> Row:
    """resume=false after a SIGKILL: a new run FINISHED, the old one closed KILLED, its files
    moved under superseded/."""
    args = ctx.overrides("run", *LONGER)
    proc = ctx.start(*args)
    ready = ctx.wait_for_file(ctx.root / "run" / "backup" / "position.json")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = snapshot([ctx.root / "run" / d for d in ("backup", "checkpoints")])
    result = ctx.train(*args, "resume=false")
    moved = ctx.root / "run" / "superseded"
    status = statuses(ctx)
    ok = ready and result.returncode == 0 and status == "KILLED,FINISHED" and moved.is_dir()
    observed = f"exit {result.returncode}, old files in superseded/: {moved.is_dir()}"
    return Row(
        "",
        "old run KILLED, new FINISHED, nothing deleted",
        observed,
        status,
        lost(before, moved),
        ok,
    )


def out_of_memory(ctx: Context) -> Row:
    """Host memory runs out (an address-space limit and 1024 px batches of 32)."""
    args = ctx.overrides(
        "run",
        "dataset.image_size=1024",
        "trainer.batch_size=32",
        "trainer.limit_train_batches=1",
        "dataset.validate=off",
    )
    result = ctx.train(*args, memory_limit=8 << 30)
    observed = one_line_error(result)
    ok = observed.startswith("exit 2") and "smaller" in result.stderr and statuses(ctx) == "FAILED"
    return Row("", "exit 2 suggesting smaller sizes, FAILED", observed, statuses(ctx), "none", ok)


# Name -> (case, trains a model). The ones that train nothing are the fast tests.
CASES: dict[str, tuple[Callable[[Context], Row], bool]] = {
    "unknown_key": (bad_override("trainer.epoch=3", "trainer.epochs"), False),
    "wrong_type": (bad_override("trainer.batch_size=eight", "trainer.batch_size"), False),
    "input_size_vs_depth": (bad_override("dataset.image_size=34", "dataset.image_size"), False),
    "num_classes_vs_dataset": (bad_override("dataset.num_classes=3", "num_classes"), False),
    "ignore_index_in_classes": (bad_override("dataset.ignore_index=1", "ignore_index"), False),
    "unknown_precision": (bad_override("trainer.precision=float64", "trainer.precision"), False),
    # Values outside a field's declared range (segkit.config.ranges), once silently trained on.
    "negative_lr": (bad_override("trainer.optimizer.lr=-0.001", "trainer.optimizer.lr"), False),
    "no_train_batches": (
        bad_override("trainer.limit_train_batches=0", "trainer.limit_train_batches"),
        False,
    ),
    "no_filters": (bad_override("model.base_filters=0", "model.base_filters"), False),
    "dropout_above_one": (bad_override("model.dropout=1.5", "model.dropout"), False),
    "weights_not_hdf5": (weights_not_hdf5, False),
    "store_not_sqlite": (store_not_sqlite, False),
    "output_dir_is_file": (output_dir_is_file, False),
    "output_read_only": (output_read_only, False),
    "cache_full_synthetic": (cache_full_synthetic, False),
    "corrupt_dataset": (corrupt_dataset, False),
    "predict_output_is_input": (faults_predict.output_is_input, False),
    "predict_output_holds_masks": (faults_predict.output_holds_masks, False),
    "predict_corrupt_image": (faults_predict.corrupt_image, False),
    "predict_unsafe_model": (faults_predict.unsafe_model, False),
    "truncated_backup": (truncated_backup, False),
    "finished_run": (finished_run, False),
    "corrupt_dataset_unvalidated": (corrupt_dataset_unvalidated, True),
    "nan_loss": (nan_loss, True),
    "mixed_float16": (mixed_float16, True),
    "out_of_memory": (out_of_memory, True),
    "sigterm_resume": (sigterm_resume, True),
    "sigkill_resume": (sigkill_resume, True),
    "fresh_start": (fresh_start, True),
    "fresh_store_race": (fresh_store_race, True),
    "cache_full": (cache_full, True),
    "output_full": (output_full, True),
}


def run_case(name: str, folder: Path, cache: Path, seed: int = 0) -> Row:
    """Run case ``name`` in ``folder`` (created) with the dataset cache ``cache``."""
    folder.mkdir(parents=True, exist_ok=True)
    case, _ = CASES[name]
    row = case(Context(folder, cache, random.Random(seed)))
    row.case = name
    row.observed = row.observed.replace(f"{folder}/", "")  # the case's own folder is implied
    return row


def make_cache(folder: Path) -> Path:
    """A cache folder holding TINY's synthetic dataset."""
    ensure_synthetic(folder / "synthetic", *SYNTHETIC)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--fast", action="store_true", help="only the cases that train nothing")
    parser.add_argument("--seed", type=int, default=None, help="of the random kill times")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(CASES)
    if args.fast:
        names = [n for n in names if not CASES[n][1]]
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    print(f"fault matrix: {len(names)} case(s), seed {seed}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="segkit-faults-") as tmp:
        cache = make_cache(Path(tmp) / "cache")
        for name in names:
            start = time.monotonic()
            try:
                row = run_case(name, Path(tmp) / name, cache, seed)
            except Skipped as skipped:
                print(f"  {name}: skipped, {skipped}", flush=True)
                continue
            rows.append((row, time.monotonic() - start))
            print(f"  {name}: {'ok' if row.ok else 'FAILED'} ({rows[-1][1]:.0f} s)", flush=True)
    header = ("case", "expected", "observed", "MLflow status", "data lost", "ok", "s")
    table = [header] + [
        (r.case, r.expected, r.observed, r.status, r.data_lost, "yes" if r.ok else "NO", f"{t:.0f}")
        for r, t in rows
    ]
    print()
    print("| " + " | ".join(table[0]) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for line in table[1:]:
        print("| " + " | ".join(line) + " |")
    return 0 if all(r.ok for r, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
