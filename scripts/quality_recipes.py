"""What scripts/quality_report.py runs: each recipe on its real sample, shortened for 2 CPU cores,
with the figure its seed project published and why the two can or cannot be compared."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One row of the quality report.

    Attributes:
        name: row name (also the MLflow run name and the results file's stem).
        experiment: the recipe, conf/experiment/<experiment>.yaml.
        data: the sample's folder under ../shared/data (dataset.root).
        overrides: what the report changes from the recipe to fit 2 CPU cores (and why, in
            ``shortened``).
        shortened: why the overrides, for the report.
        splits: held-out splits scored by segkit.evaluate; the first is the headline.
        challenge: (score key without the split, label) of the dataset's challenge metric.
        seed: the seed project's published figure.
        comparable: why that figure and segkit's can or cannot be compared.
        reading: what the sample's numbers can and cannot show for this recipe.
    """

    name: str
    experiment: str
    data: str
    overrides: tuple[str, ...]
    shortened: str
    splits: tuple[str, ...]
    challenge: tuple[str, str]
    seed: str
    comparable: str
    reading: str = ""


ISIC_SEED = "test Dice 0.85 (improved UNet, 200 epochs at lr 1e-6, 2014 training images)"
ISIC_COMPARABLE = (
    "Same model family and loss, but trained on 510 images instead of 2014 and for a fraction of "
    "the epochs, and scored on other images (ISIC 2017 images here, their own ISIC 2018 split "
    "there): the order of magnitude is comparable, the third digit is not."
)

ENTRIES = (
    Entry(
        name="isic_improved_unet",
        experiment="isic_improved_unet",
        data="isic2018_256",
        overrides=("trainer.epochs=40",),
        shortened="40 epochs instead of 60 (the cosine schedule ends with the 40th)",
        splits=("val", "test"),
        challenge=("thresholded_jaccard", "ISIC thresholded Jaccard"),
        seed=ISIC_SEED,
        comparable=ISIC_COMPARABLE,
    ),
    Entry(
        # The classic UNet at the improved UNet's size budget: base 20 gives 3.04 M parameters
        # against 3.19 M; everything else (data, loss, schedule, epochs) is the recipe's.
        name="isic_unet_same_budget",
        experiment="isic_improved_unet",
        data="isic2018_256",
        overrides=("model=unet", "model.base_filters=20", "trainer.epochs=40"),
        shortened=(
            "the ISIC recipe, shortened alike, with the classic UNet (base 20: 3.04 M parameters)"
        ),
        splits=("val", "test"),
        challenge=("thresholded_jaccard", "ISIC thresholded Jaccard"),
        seed=ISIC_SEED,
        comparable=ISIC_COMPARABLE,
    ),
    Entry(
        name="dsb2018_mobilenet_unet",
        experiment="dsb2018_mobilenet_unet",
        data="dsb2018",
        overrides=("trainer.epochs=150",),
        shortened=(
            "150 epochs instead of 40: the sample has 56 training images (the full stage 1 set "
            "670), 3 whole batches of 16 per epoch, so the recipe's 40 epochs would be 120 steps; "
            "150 epochs are 450"
        ),
        splits=("test",),
        challenge=("dsb_map", "DSB mAP@0.5:0.95"),
        seed="pixel accuracy 0.95 after 5 epochs (frozen ImageNet MobileNetV2 encoder, 670 images)",
        comparable=(
            "Pixel accuracy is defined alike, but 88% of the sample's pixels are background, so "
            "it says little (predicting no nucleus at all scores 0.88); the seed starts from "
            "ImageNet weights, segkit from random ones (nothing is downloaded), on 12x fewer "
            "images."
        ),
    ),
    Entry(
        name="voc_unet",
        experiment="voc_unet",
        data="voc2012/VOCdevkit/VOC2012",
        overrides=("trainer.epochs=60", "model.base_filters=16"),
        shortened=(
            "60 epochs and base 16 instead of 100 epochs and base 32 (which takes about 4x as "
            "long per epoch)"
        ),
        splits=("val",),
        challenge=("voc_miou_no_bg", "VOC mIoU without background"),
        seed="val MIoU 0.4472 (classic UNet, 255 boundary scored as background)",
        comparable=(
            "Not comparable: the seed trained on the full VOC 2012 training set (segkit's "
            "sample has 120 images) and counted the 255 boundary pixels as background, which "
            "changes every class's IoU; segkit ignores them and reports MIoU with and without "
            "background."
        ),
        reading=(
            "120 training images from random weights are far too few for 20 object classes: "
            "the UNet learns the background and little of the objects, so MIoU without "
            "background stays near 0. The recipe is meant for the full set (1464 images, 10582 "
            "with SBD's masks); on the sample the run shows only that 21-class training, "
            "the 255 boundary and letterboxing work end to end"
        ),
    ),
    Entry(
        name="isbi_unet",
        experiment="isbi_unet",
        data="isbi2012",
        overrides=("trainer.epochs=80",),
        shortened="80 epochs instead of 100",
        splits=("test",),
        challenge=("pixel_error", "pixel error (1 - pixel accuracy)"),
        seed="pixel error 0.0611 (Ronneberger et al. 2015, ISBI 2012 test volume)",
        comparable=(
            "The metric is the challenge's pixel error, but segkit scores 4 held-out slices of "
            "the training volume (the test volume's labels are not public), and the paper's "
            "network is the 31 M-parameter UNet trained far longer on all 30 slices."
        ),
    ),
)
