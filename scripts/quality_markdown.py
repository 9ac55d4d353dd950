"""docs/quality.md from the results scripts/quality_report.py saved (one dict per entry)."""

from __future__ import annotations

from quality_recipes import ENTRIES, Entry

ENTRY = {e.name: e for e in ENTRIES}
COMPARED = ("isic_improved_unet", "isic_unet_same_budget")


def report_markdown(results: dict[str, dict], figures: dict[str, str]) -> str:
    """The whole report: scores, the ISIC comparison, settings and timings, the seeds' figures,
    learning curves."""
    commits = sorted({r["commit"] + (" (with uncommitted changes)" if r["dirty"] else "")
                      for r in results.values()})  # fmt: skip
    first = next(iter(results.values()))
    lines = [
        "# Quality report: the recipes on the real dataset samples",
        "",
        "Written by `scripts/quality_report.py` from real runs: each recipe of `conf/experiment/` "
        "trained with `python -m segkit.train experiment=<recipe> dataset.root=...` on the "
        "samples in `../shared/data`, shortened to fit 2 CPU cores, then scored on its held-out "
        "split by `python -m segkit.evaluate run_id=<id> split=<split>` (best checkpoint, each "
        "image at its original resolution). The samples are small (50 to 650 images), so these "
        "numbers show that each recipe trains to a sensible quality, not what it reaches on the "
        "full datasets.",
        "",
        f"- Commit: {', '.join(commits)}"
        + (
            "; the rows ran one by one, each at the commit in the settings table"
            if len(commits) > 1
            else ""
        )
        + f"; run on {first['date']}, {first['machine']}.",
        "- Reproduce: `python scripts/quality_report.py` (all) or `--only <row>`; runs are in the "
        "MLflow store `outputs/quality/mlflow.db` (experiment `quality-report`).",
        "",
        "## Scores on held-out images",
        "",
        "Dice is the foreground classes' mean, MIoU the mean over all classes (background "
        "included), both from one confusion matrix over the split; the last column is the "
        "dataset's challenge metric.",
        "",
        "| recipe | split (images) | Dice | MIoU | pixel accuracy | challenge metric |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, result in results.items():
        entry = ENTRY[name]
        for split, evaluation in result["evaluations"].items():
            scores = evaluation["scores"]
            lines.append(
                f"| {name} | {split_label(split, result)} "
                f"| {scores[f'{split}/dice']:.4f} | {scores[f'{split}/miou']:.4f} "
                f"| {scores[f'{split}/pixel_accuracy']:.4f} "
                f"| {challenge(entry, split, scores)} |"
            )
    lines += comparison(results)
    lines += [
        "",
        "## Settings and time",
        "",
        "Times are wall-clock on the machine above (training includes validation every epoch "
        "and saving checkpoints; evaluation includes loading the model and writing figures).",
        "",
        "| recipe | command (besides dataset.root) | model, parameters | input | epochs x batch "
        "| loss, lr, schedule | precision | train min | evaluate s | commit |",
        "| --- | --- | --- | --- | --- | --- | --- | ---: | ---: | --- |",
    ]
    for name, result in results.items():
        p = result["params"]
        evaluate_seconds = sum(e["seconds"] for e in result["evaluations"].values())
        command = " ".join(o for o in result["overrides"] if not o.startswith("dataset.root="))
        lines.append(
            f"| {name} | `{command}` | {model_label(p)}, {params(result)} "
            f"| {p.get('dataset.image_size')} px "
            f"{p.get('dataset.resize')}, augment {p.get('augment.name')} "
            f"| {p.get('trainer.epochs')} x {p.get('trainer.batch_size')} "
            f"| {p.get('trainer.loss')}, {p.get('trainer.optimizer.lr')}, "
            f"{p.get('trainer.schedule.name')} | {p.get('precision')} "
            f"| {result['train_seconds'] / 60:.1f} | {evaluate_seconds:.0f} | {result['commit']} |"
        )
    lines += ["", "What the report changes from each recipe, and why:", ""]
    lines += [f"- {name}: {ENTRY[name].shortened}." for name in results]
    readings = [f"- {name}: {ENTRY[name].reading}." for name in results if ENTRY[name].reading]
    if readings:
        lines += ["", "Reading the numbers:", "", *readings]
    lines += [
        "",
        "## Beside the seeds' published figures",
        "",
        "| recipe | seed project reports | segkit here | comparable? |",
        "| --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        entry = ENTRY[name]
        split = entry.splits[-1] if entry.splits[-1] in result["evaluations"] else entry.splits[0]
        scores = result["evaluations"][split]["scores"]
        here = (
            f"{split} Dice {scores[f'{split}/dice']:.3f}, MIoU {scores[f'{split}/miou']:.3f}, "
            f"pixel accuracy {scores[f'{split}/pixel_accuracy']:.3f}, "
            f"{challenge(entry, split, scores)}"
        )
        lines.append(f"| {name} | {entry.seed} | {here} | {entry.comparable} |")
    lines += ["", "## Learning curves", ""]
    for name, figure in figures.items():
        lines += [f"### {name}", "", f"![learning curves of {name}]({figure})", ""]
    return "\n".join(lines).rstrip() + "\n"


def split_label(split: str, result: dict) -> str:
    """``val (50)``: the split and its number of images."""
    return f"{split} ({result['evaluations'][split]['images']})"


def challenge(entry: Entry, split: str, scores: dict[str, float]) -> str:
    """The challenge metric's label and value (pixel error is 1 - pixel accuracy)."""
    key, label = entry.challenge
    if key == "pixel_error":
        value = 1.0 - scores[f"{split}/pixel_accuracy"]
    else:
        value = scores.get(f"{split}/{key}", float("nan"))
    return f"{label} {value:.4f}"


def comparison(results: dict[str, dict]) -> list[str]:
    """The improved UNet against the classic UNet of the same size budget, on ISIC."""
    if not all(name in results for name in COMPARED):
        return []
    improved, classic = (results[name] for name in COMPARED)
    lines = [
        "",
        "## ISIC: improved UNet against a classic UNet of the same size",
        "",
        f"Improved UNet {params(improved)} parameters, classic UNet {params(classic)}; the same "
        "data, loss, learning-rate schedule and number of epochs.",
        "",
        "| split | score | improved UNet | classic UNet | difference |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    behind = []
    for split in ("val", "test"):
        a_scores = improved["evaluations"][split]["scores"]
        b_scores = classic["evaluations"][split]["scores"]
        for score in ("dice", "image_dice_mean", "thresholded_jaccard"):
            a, b = a_scores[f"{split}/{score}"], b_scores[f"{split}/{score}"]
            lines.append(f"| {split} | {score} | {a:.4f} | {b:.4f} | {a - b:+.4f} |")
            if a <= b:
                behind.append(f"{split} {score}")
    val_dice = improved["evaluations"]["val"]["scores"]["val/dice"]
    lines += [
        "",
        f"- Validation Dice of the improved UNet: {val_dice:.4f} "
        f"({'at least' if val_dice >= 0.80 else 'BELOW'} the 0.80 this recipe must reach).",
    ]
    lines.append(
        f"- One run (one seed) each; behind on: {', '.join(behind) or 'nothing'}. Two runs alone "
        "cannot say which model is better: [quality_comparison.md](quality_comparison.md) "
        "repeats the comparison with 3 seeds per model and paired intervals over the images "
        "(`segkit.compare`), and states what the data support."
    )
    return lines


def model_label(logged: dict[str, str]) -> str:
    """``unet base 16``; the model name alone where it has no base width (mobilenet_unet)."""
    base = logged.get("model.base_filters")
    return f"{logged.get('model.name')}" + (f" base {base}" if base not in (None, "None") else "")


def params(result: dict) -> str:
    """A run's parameter count in millions."""
    return f"{int(result['params'].get('parameters') or 0) / 1e6:.2f} M"
