"""docs/quality_comparison.md from what scripts/quality_compare.py measured."""

from __future__ import annotations

from segkit.core.stats import summarise

# Columns of the over-seeds table: (column of segkit.compare's group table, heading).
GROUP_COLUMNS = (
    ("best/val/dice", "val Dice (training size)"),
    ("eval:val/dice", "val Dice"),
    ("eval:test/dice", "test Dice"),
    ("eval:test/image_dice_mean", "test mean per-image Dice"),
    ("eval:test/thresholded_jaccard", "test thresholded Jaccard"),
)
PAIRED_SCORES = (
    ("dice", "split Dice"),
    ("miou", "split mIoU"),
    ("image_dice_mean", "per-image Dice"),
)


def comparison_markdown(result: dict, variants, budget) -> str:
    """The whole report."""
    (candidate, candidate_model, candidate_overrides) = variants[0]
    (baseline, baseline_model, baseline_overrides) = variants[1]
    minutes = result["train_minutes"]
    evaluations = 2 * len(minutes)  # val and test of every run
    lines = [
        "# ISIC: improved UNet against a classic UNet of the same size, 3 seeds each",
        "",
        "Written by `scripts/quality_compare.py` from real runs on the ISIC sample in "
        "`../shared/data/isic2018_256` (510 training, 50 validation images; the test split is "
        "90 images drawn from the training folder by `split.seed`, the same in every run). "
        "Each model trained with 3 seeds at the budget of the single-seed rows in "
        "[quality.md](quality.md) (`" + " ".join(budget) + "`), then every run was scored "
        "by `segkit.evaluate` on val and test at the original resolution.",
        "",
        f"- Candidate {candidate}: `{' '.join(candidate_overrides)}` "
        f"({_millions(result['parameters'].get(candidate_model))} parameters); baseline "
        f"{baseline}: `{' '.join(baseline_overrides)}` "
        f"({_millions(result['parameters'].get(baseline_model))} parameters).",
        f"- Commit {result['commit']}, {result['date']}, {result['machine']}. Training "
        f"{sum(minutes.values()):.0f} min for the {len(minutes)} runs "
        f"({min(minutes.values()):.1f} to {max(minutes.values()):.1f} min each), plus "
        f"{evaluations} evaluations; reproduce with `python scripts/quality_compare.py`.",
        "",
        "## Over seeds: `segkit.compare experiment=quality-compare group_by=model.name`",
        "",
        "Mean ± sd over the seeds and the 95% t interval of the mean (n = 3: wide by design).",
        "",
        "| model | runs | " + " | ".join(h for _, h in GROUP_COLUMNS) + " |",
        "| --- | ---: |" + " ---: |" * len(GROUP_COLUMNS),
    ]
    for group in result["groups"]:
        cells = [str(group.get(column, "")) for column, _ in GROUP_COLUMNS]
        lines.append(f"| {group['model.name']} | {group['n']} | " + " | ".join(cells) + " |")
    lines += [f"- note: {note}" for note in result["notes"]]
    lines += _paired_table(result, candidate, baseline)
    lines += _reading(result, candidate, baseline)
    lines += ["", "## Time per run", "", "| run | train min |", "| --- | ---: |"]
    lines += [f"| {name} | {m:.1f} |" for name, m in sorted(minutes.items())]
    return "\n".join(lines) + "\n"


def _paired_table(result: dict, candidate: str, baseline: str) -> list[str]:
    lines = [
        "",
        f"## Image by image: `segkit.compare baseline=<{baseline}> candidate=<{candidate}>`",
        "",
        "Candidate minus baseline for the runs of the same seed, on the same images: the 95% "
        "interval is a bootstrap over images (10,000 resamples; split scores recomputed from "
        "the resampled images' confusion matrices), p a paired permutation test (split "
        "scores) or Wilcoxon signed-rank test (per-image Dice).",
        "",
        "| seed | split (images) | "
        + " | ".join(label for _, label in PAIRED_SCORES)
        + " | verdict |",
        "| ---: | --- |" + " --- |" * len(PAIRED_SCORES) + " --- |",
    ]
    for p in result["paired"]:
        found = {d["score"]: d for d in p["differences"]}
        cells = [_difference(found[name]) for name, _ in PAIRED_SCORES if name in found]
        verdict = p["verdict"].split(" (")[0]
        row = [str(p["run_seed"]), f"{p['split']} ({p['images']})", *cells, verdict]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _reading(result: dict, candidate: str, baseline: str) -> list[str]:
    """What the numbers support, from the numbers."""
    lines = ["", "## What the data support", ""]
    for split in ("val", "test"):
        runs = [p for p in result["paired"] if p["split"] == split]
        dice = [next(d for d in p["differences"] if d["score"] == "dice") for p in runs]
        over_seeds = summarise([d["difference"] for d in dice])
        verdicts = [p["verdict"].split(" (")[0] for p in runs]
        better = {v for v in verdicts if v.endswith("better")}
        images = runs[0]["images"]
        line = (
            f"- {split} ({images} images): split Dice difference {candidate} - {baseline} per "
            f"seed " + ", ".join(f"{d['difference']:+.4f}" for d in dice) + "; over the "
            f"{over_seeds.n} seeds {over_seeds.mean:+.4f} ± {over_seeds.sd:.4f}, 95% t interval "
            f"[{over_seeds.low:+.4f}, {over_seeds.high:+.4f}]. "
        )
        if not better:
            line += (
                f"No seed's paired comparison detects a difference at {images} images: the "
                "models cannot be told apart here."
            )
        elif len(better) == 1 and len(set(verdicts)) == 1:
            line += f"Every seed: {verdicts[0]}."
        else:
            counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
            line += (
                "The seeds disagree ("
                + "; ".join(f"{v}: {n} of {len(verdicts)}" for v, n in counts.items())
                + "): a difference between two single runs is within what the seed alone "
                "changes."
            )
        lines.append(line)
        lines.append(_per_image_reading(runs, candidate, split))
    return lines


def _per_image_reading(runs: list[dict], candidate: str, split: str) -> str:
    """The mean per-image Dice, which weighs each image alike (small lesions as much as big)."""
    per_image = [next(d for d in p["differences"] if d["score"] == "image_dice_mean") for p in runs]
    lower = sum(d["difference"] < 0 for d in per_image)
    excluding = sum(d["high"] < 0 or d["low"] > 0 for d in per_image)
    significant = sum(d["p_value"] < 0.05 for d in per_image)
    return (
        f"- {split}, mean per-image Dice: {candidate} lower in {lower} of {len(per_image)} seeds "
        "(" + ", ".join(f"{d['difference']:+.4f}" for d in per_image) + f"); the bootstrap "
        f"interval excludes 0 in {excluding}, Wilcoxon p < 0.05 in {significant}. "
        + (
            "A consistent lean, not an established difference."
            if excluding == 0 and lower in (0, len(per_image))
            else "Seed by seed the sign and strength vary."
            if excluding == 0
            else "Where the interval excludes 0, that seed's pair differs."
        )
    )


def _difference(d: dict) -> str:
    return f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], p={d['p_value']:.2g}"


def _millions(count: str | None) -> str:
    return f"{int(count) / 1e6:.2f} M" if count else "?"
