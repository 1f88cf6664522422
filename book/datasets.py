# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# (datasets)=
# # The data: a synthetic benchmark and the real ones
#
# The four papers train on CUB-200-2011, Stanford Cars, FGVC-Aircraft, Stanford Dogs,
# ImageNet, OpenImages and COCO, on GPUs, for hours. This book's default run has
# neither the data nor the GPU, so it uses a **procedural benchmark** that is drawn on
# the fly and recreates, in miniature, the failure modes each paper sets out to fix:
#
# - **fine-grained classes that differ by a small part** (a crest, a spoiler, a tail
#   fin, ear shape) on a shared body, so a classifier's CAM locks onto the part and
#   misses the object's extent (the under-coverage InCA and WeightMap fight);
# - **upright objects on oriented backgrounds** (sky above, ground below, a horizon,
#   texture and clutter in the objects' own colours), so a rotation classifier can
#   partly solve its task from the background, and its attention smears there (what
#   CAML fixes);
# - a **context bias** knob that ties backgrounds to classes (over-coverage for CAM;
#   background bias for contrastive learning, ContraCAM's subject);
# - **multi-object scenes** and the seven **Background Challenge** variants.
#
# Every sample carries its image, class, family, GT boxes, GT mask and the mask of its
# discriminative part. The last section of this chapter *measures* that the benchmark
# has these properties, with short training runs. The real datasets are one parameter
# away; their section says where to get each and how to lay it out.

# %% tags=["parameters", "hide-input"]
dataset = "synthetic"  # this chapter shows the synthetic benchmark and checks real data
data_root = "data"  # where the real datasets live (see "Real datasets" below)
image_size = 96  # pixels, for the gallery
evidence_image_size = 64  # pixels, for the short training runs
train_samples = 2000  # images per evidence run
epochs = 10  # per evidence run; the learning rate drops x0.1 for the last 3
batch_size = 16
lr = 0.02
seed = 0
output_dir = None  # results/ at the repository root by default

# %% tags=["hide-input"]
import warnings

warnings.filterwarnings("ignore")

from coloc.runtime import check_parameters

check_parameters()  # stops on a papermill -p name the parameters cell lacks

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from coloc import cam, caml
from coloc.cam import CAMClassifier, mass_inside
from coloc.data import DATASETS, check, collate_samples, load
from coloc.data.synthetic import FAMILIES, VARIANTS, SyntheticDataset
from coloc.models import build_backbone
from coloc.plots import draw_boxes, grid, score_colorbar, show_map
from coloc.pretrain import (
    PretrainConfig,
    families_except,
    synthetic_pretrained_backbone,
)
from coloc.maps import upsample_maps
from coloc.report import glue_figure, glue_text, show
from coloc.runtime import Timer, results_root, seed_everything

if dataset != "synthetic":
    raise ValueError(f"this chapter presents the synthetic benchmark; got {dataset!r}")
seed_everything(seed, threads=2)
timer = Timer()


def show_sample(ax, ds, index, title=None):
    """Image with GT boxes (red), object mask outline (white), part mask (yellow)."""
    sample = ds[index]
    ax.imshow(ds.raw_image(index))
    ax.contour(
        sample["mask"].numpy() == 1, levels=[0.5], colors="white", linewidths=0.8
    )
    ax.contour(
        sample["part_mask"].numpy(), levels=[0.5], colors="yellow", linewidths=1.2
    )
    draw_boxes(ax, sample["boxes"], "red")
    ax.set_title(title or ds.classes[sample["label"]], fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


# %% [markdown] tags=[]
# ## Four families, many fine-grained classes
#
# Each family mirrors one co-localization benchmark: birds (CUB), cars (Stanford
# Cars), aircraft (FGVC-Aircraft) and dogs (Stanford Dogs). Within a family all classes
# share the body; only the discriminative part (outlined in yellow) changes. The white
# outline is the GT mask, the red box the GT box. Position, scale (20-70 % of the side)
# and left/right mirroring are random; the pose stays upright.

# %% tags=[]
fig, axes = grid(len(FAMILIES), 6, size=1.8)
for row, family in enumerate(FAMILIES):
    ds = load(f"synthetic-{family}", split="train", image_size=image_size, seed=seed)
    for col in range(6):
        show_sample(axes[row, col], ds, col)
fig.tight_layout()
glue_figure("fig-families", fig)
print({family: SyntheticDataset(families=(family,)).num_classes for family in FAMILIES})

# %% [markdown] tags=[]
# ```{glue:figure} fig-families
# :name: fig-datasets-families
#
# Synthetic training images, one family per row (birds, cars, aircraft, dogs): GT box
# red, object mask white, discriminative part yellow; titles name the fine-grained
# class. Within a row, only the yellow part tells the classes apart.
# ```

# %% [markdown] tags=[]
# ## Context bias and multi-object scenes
#
# With `context_bias=0` the background style is drawn independently of the class; with
# `context_bias=1` every image of a class gets that class's background style (sky,
# ground colour, texture, horizon height). The marginal distribution of backgrounds
# does not change, only its correlation with the class. Below, images of one class
# under both settings, then multi-object scenes (1-3 objects of several families).

# %% tags=[]
neutral = SyntheticDataset("train", image_size, seed=seed, context_bias=0.0)
biased = SyntheticDataset("train", image_size, seed=seed, context_bias=1.0)
scenes = SyntheticDataset(
    "train", image_size, seed=seed, families=FAMILIES, num_objects=(1, 3)
)
# labels are index % num_classes
same_class = [i * neutral.num_classes for i in range(6)]
fig, axes = grid(3, 6, size=1.8)
for col, index in enumerate(same_class):
    show_sample(axes[0, col], neutral, index, "bias 0")
    show_sample(axes[1, col], biased, index, "bias 1")
    show_sample(axes[2, col], scenes, col, f"{len(scenes[col]['boxes'])} objects")
fig.tight_layout()
glue_figure("fig-context", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-context
# :name: fig-datasets-context
#
# Six images of one class with `context_bias=0` (top row: backgrounds vary) and
# `context_bias=1` (middle row: the class's own background style every time), and
# multi-object scenes (bottom row).
# ```

# %% [markdown] tags=[]
# ## The seven Background Challenge variants
#
# ContraCAM evaluates background bias with the Background Challenge (Xiao et al.,
# 2021). The generator builds its variants exactly, from its clean layers: the object
# on black (`only_fg`), the object's box blacked out (`only_bg_b`), the object removed
# and its region filled with the clean background (`only_bg_t`), and the object pasted
# on the background of another image of the same class (`mixed_same`), of a random
# image (`mixed_rand`) or of the next class (`mixed_next`).

# %% tags=[]
fig, axes = grid(3, len(VARIANTS), size=1.6)
for col, variant in enumerate(VARIANTS):
    ds = SyntheticDataset(
        "test", image_size, seed=seed, context_bias=1.0, variant=variant
    )
    for row in range(3):
        axes[row, col].imshow(ds.raw_image(row))
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[0, col].set_title(variant, fontsize=8)
fig.tight_layout()
glue_figure("fig-variants", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-variants
# :name: fig-datasets-variants
#
# The seven Background Challenge variants (columns) of the same three test images (rows),
# built from the generator's clean layers with `context_bias=1`.
# ```

# %% [markdown] tags=[]
# ## Sizes, positions and class balance
#
# The distributions the chapters' numbers depend on: how large the objects are
# (relative box area; CorLoc at IoU 0.5 is much harder for small objects), where they
# sit, and how many images each class has.

# %% tags=[]
stats_set = SyntheticDataset("train", evidence_image_size, seed=seed)
loader = torch.utils.data.DataLoader(
    stats_set, batch_size=250, collate_fn=collate_samples
)
boxes, labels = [], []
for batch in loader:
    boxes += [b[0] for b in batch["boxes"]]
    labels += batch["label"].tolist()
boxes = torch.stack(boxes).numpy()
side = float(evidence_image_size)
area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1) / side**2
centres = (
    (boxes[:, 0] + boxes[:, 2]) / 2 / side,
    (boxes[:, 1] + boxes[:, 3]) / 2 / side,
)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
axes[0].hist(area, bins=30, color="tab:blue")
axes[0].set_xlabel("GT box area / image area")
axes[0].set_ylabel("images")
axes[1].scatter(*centres, s=3, alpha=0.4)
axes[1].set_xlim(0, 1)
axes[1].set_ylim(1, 0)
axes[1].set_aspect("equal")
axes[1].set_title("box centres (image coordinates)", fontsize=9)
axes[2].bar(*np.unique(labels, return_counts=True))
axes[2].set_xlabel("class")
axes[2].set_ylabel("images")
fig.tight_layout()
glue_figure("fig-sizes", fig)
glue_text("sizes", f"The GT box covers a median {np.median(area):.2f} of the image (10-90 %: "
          f"{np.quantile(area, 0.1):.2f} to {np.quantile(area, 0.9):.2f}).")

# %% [markdown] tags=[]
# ```{glue:figure} fig-sizes
# :name: fig-datasets-sizes
#
# Synthetic birds, train split: GT box area over image area (left), box centres (middle)
# and images per class (right).
# ```
#
# {glue:md}`sizes`

# %% [markdown] tags=[]
# ## Real datasets
#
# Each real dataset lives in its own folder under `data_root`, in its official layout.
# `coloc.data.load(name, root=data_root, split=..., image_size=...)` reads it and
# returns the same sample structure as the synthetic set, with the protocol's
# transforms (test: resize without crop, boxes scaled and truncated; train: resize and
# random crop, with flip for WSOL or reflect padding for PsyNet). A missing or broken
# file raises an error that names the path, the line, the expected layout and where
# the dataset is published. The table says what this machine has.

# %% tags=[]
rows = []
for name, info in DATASETS.items():
    missing = check(name, data_root)
    rows.append(
        {
            "name": name,
            "dataset": info.title,
            "classes": info.num_classes,
            "splits": ", ".join(info.splits),
            "folder": f"{data_root}/{info.subdir}",
            "status": (
                f"missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
                if missing
                else "present"
            ),
            "get it from": info.url,
        }
    )
show(pd.DataFrame(rows))

# %% [markdown] tags=[]
# The expected layout of each, relative to `data_root`:

# %% tags=[]
from html import escape  # noqa: E402

from IPython.display import HTML  # noqa: E402

HTML("".join(  # wrapped monospace: the trees are wider than the text column
    f"<p><b>{escape(name)}</b>: {escape(info.title)} ({escape(info.url)})</p>"
    f"<div style='white-space: pre-wrap; font-family: monospace; font-size: 85%'>"
    f"{escape(info.tree.rstrip())}</div>" for name, info in DATASETS.items()))

# %% [markdown] tags=[]
# For every dataset that is present, a few test samples with their GT (nothing is
# shown for those that are missing; the table above says what to add).

# %% tags=[]
present = [name for name in DATASETS if not check(name, data_root)]
for name in present:
    ds = load(name, root=data_root, split="test", image_size=224)
    fig, axes = grid(1, 4, size=2.4)
    for col in range(min(4, len(ds))):
        sample = ds[col]
        show_map(axes[0, col], sample["image"], gt_boxes=sample["boxes"], title=name)
print(f"present under {data_root!r}: {present or 'none'}")

# %% [markdown] tags=[]
# ## Evidence: does the benchmark fail the way the papers' data does?
#
# Three short CPU training runs check the properties the chapters rely on. For a
# score map we measure the share of its (positive) mass inside the discriminative part
# and inside the object, on 500 test images, beside the share of the image those
# regions cover: a map that ignored location would put mass in proportion to area.
#
# 1. **Part focus.** A classifier (4-block CNN, GAP, linear) trained on the 12
#    fine-grained bird classes: its CAM should concentrate on the part. We compare
#    *densities* (a region's mass share over its area share): a CAM spread evenly over
#    the bird makes the part exactly as dense as the whole object, a ratio of 1, so we
#    ask for a part density of at least **1.5 times** the object's, half as much
#    again. The factor is modest because the map is coarse: the 8x8 CAM, upsampled
#    to 64 px, blurs the part (a few dozen pixels) into its surroundings, so even a
#    map on the part alone reaches only a few times the object's density. Two
#    reference maps, the object's and the part's masks pooled to the CAM's grid,
#    show that range below: an evenly covered object scores below 1 there (the part
#    sits on the object's edge, where the blurred map is weaker than on the body), so
#    1.5 is about twice what even coverage scores at this resolution.
# 2. **Context bias spreads CAM.** The same classifier trained with `context_bias=1`:
#    the background now predicts the class too, and CAM mass should move off the
#    object.
# 2. **Context bias spreads CAM**, by a margin: the biased classifier's share of CAM
#    mass on the object should be at least **5 points** lower than the neutral one's.
# 3. **Rotation smears onto the background.** The rotation-pretext baseline of the CAML
#    chapter (PsyNet-style, channel-average attention) should put more of its attention
#    outside the object than a map that covers the object evenly does at the same
#    resolution (the object's mask pooled to the 8x8 grid and upsampled: it already puts
#    much of its mass outside, because upsampling blurs), by at least **5 points**.


# %% [markdown] tags=[]
# The papers' CAM baselines fine-tune ImageNet weights; so does this classifier, from
# the book's CPU stand-in for them (`coloc.pretrain`: the small CNN trained to tell
# the *other* three families apart, so it has never seen a bird nor a part colour as a
# label; the CAML chapter uses the same weights). From scratch, a run this short
# learns the 12 part colours too slowly (`-p` has no switch for it; `coloc.cam.profile(
# "synthetic", pretrained=False)` trains that run). The classifier is the package's CAM
# baseline (`coloc.cam`, the one InCA and WeightMap compare with): SGD with momentum on
# training images drawn once and kept in memory (the generator already mirrors objects
# at random); its settings are printed below.


# %% tags=[]
def shares(maps: torch.Tensor, batch: dict) -> dict[str, float]:
    """Mean shares of the maps' mass inside the part and the object, and their areas."""
    obj, part = batch["mask"] == 1, batch["part_mask"]
    return {
        "part": mass_inside(maps, part).nanmean().item(),
        "object": mass_inside(maps, obj).nanmean().item(),
        "part area": part.double().mean().item(),
        "object area": obj.double().mean().item(),
    }


def density_ratio(measure: dict[str, float]) -> float:
    """Part density over object density (density: mass share / area share)."""
    return (measure["part"] / measure["part area"]) / (
        measure["object"] / measure["object area"]
    )


with timer("backbone pretraining (cached, shared with the CAML chapter)"):
    synthetic_pretrained_backbone(
        PretrainConfig(
            image_size=evidence_image_size, families=families_except("bird")
        ),
        results_root(output_dir),
    )


lr_drop = max(1, epochs - 3)  # the learning rate is x0.1 after this epoch


def cam_run(context_bias: float) -> CAMClassifier:
    """Fine-tune (or load) the fine-grained CAM classifier of one context-bias setting."""
    config = cam.profile("synthetic", image_size=evidence_image_size,
                         train_samples=train_samples, epochs=epochs,
                         batch_size=batch_size, lr=lr, milestones=(lr_drop,), seed=seed,
                         context_bias=context_bias)
    with timer(f"CAM, context_bias {context_bias}"):
        return cam.run(config, output_dir).model()


def cam_test(
    model: CAMClassifier, context_bias: float, n: int
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The first ``n`` test images, the model's logits and its CAMs of the GT class."""
    test = SyntheticDataset(
        "test", evidence_image_size, num_samples=n, seed=seed, context_bias=context_bias
    )
    batch = collate_samples([test[i] for i in range(n)])
    with torch.no_grad():
        output = model(batch["image"])
        maps = upsample_maps(
            model.cam(output["features"], batch["label"]), evidence_image_size
        )
    return batch, output["logits"], maps


def cam_shares(model: CAMClassifier, context_bias: float, n: int = 500) -> dict:
    """Mean CAM mass shares on the test split (GT class), and accuracy."""
    batch, logits, maps = cam_test(model, context_bias, n)
    accuracy = (logits.argmax(1) == batch["label"]).double().mean().item()
    return {**shares(maps, batch), "accuracy": accuracy}


models = {bias: cam_run(bias) for bias in (0.0, 1.0)}
measured = {
    f"CAM, context_bias {b}": cam_shares(model, b) for b, model in models.items()
}
print(f"each run: {train_samples} images of {evidence_image_size} px, {epochs} epochs,")
print(f"batch {batch_size}, lr {lr} (x0.1 after epoch {lr_drop})")

# %% [markdown] tags=[]
# The CAMs on the first test images: without context bias the hot spot sits on or
# next to the crest (yellow outline) rather than spread over the bird (white); with
# context bias most of the map lies on the background.

# %% tags=["hide-input"]
fig, axes = grid(2, 6, size=1.8)
for row, (bias, model) in enumerate(models.items()):
    batch, _, maps = cam_test(model, bias, 6)
    for col in range(6):
        ax = axes[row, col]
        show_map(ax, batch["image"][col], maps[col], title=f"context_bias {bias}")
        ax.contour(
            batch["mask"][col] == 1, levels=[0.5], colors="white", linewidths=0.8
        )
        ax.contour(
            batch["part_mask"][col], levels=[0.5], colors="yellow", linewidths=1.2
        )
fig.tight_layout()
score_colorbar(fig, axes, "CAM (share of the map's maximum)")
glue_figure("fig-cams", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-cams
# :name: fig-datasets-cams
#
# CAM of the true class (jet) on six test images, with the object outlined in white and
# the part in yellow: classifier trained with `context_bias=0` (top) and `1` (bottom).
# ```

# %% [markdown] tags=[]
# The two reference maps of property 1, on the same test images: the object's mask
# (evenly covered) and the part's mask, each averaged over the CAM's 8x8 cells and
# upsampled exactly like a CAM.

# %% tags=[]
test = SyntheticDataset("test", evidence_image_size, num_samples=500, seed=seed)
batch = collate_samples([test[i] for i in range(len(test))])
stride = build_backbone("small_cnn").stride
for name, region in (("object", batch["mask"] == 1), ("part", batch["part_mask"])):
    pooled = torch.nn.functional.avg_pool2d(region[:, None].float(), stride)[:, 0]
    maps = upsample_maps(pooled, evidence_image_size)
    measured[f"reference: {name} mask at CAM resolution"] = shares(maps, batch)
part_pixels = batch["part_mask"].flatten(1).sum(1).double().median().item()
print(
    f"part: median {part_pixels:.0f} pixels of {evidence_image_size}x{evidence_image_size}"
)

# %% [markdown] tags=[]
# The rotation baseline is exactly the CAML chapter's baseline run (same configuration,
# so it is trained once and shared through `results/`).

# %% tags=[]
baseline = caml.run(caml.profile("synthetic", seed=seed).baseline(), output_dir)
test = SyntheticDataset("test", baseline.config.image_size, num_samples=500, seed=seed)
batch = collate_samples([test[i] for i in range(len(test))])
maps = baseline.score_maps(batch)
measured["rotation baseline (channel average)"] = shares(maps, batch)

# %% [markdown] tags=[]
# ### The three properties, measured
#
# Shares of each map's mass inside the part and inside the object (mean over 500 test
# images), beside the share of the image those regions cover, the part's density over
# the object's (property 1), and the classifiers' test accuracy on the 12 classes.

# %% tags=[]
evidence = pd.DataFrame(measured).T
evidence["outside object"] = 1 - evidence["object"]
density = {name: density_ratio(measure) for name, measure in measured.items()}
show(evidence.mul(100).round(1).rename(columns=lambda c: f"{c} (%)").assign(
    **{"part / object density": pd.Series(density).round(2)}
).reset_index(names="map"))

# %% tags=[]
neutral_cam = measured["CAM, context_bias 0.0"]
biased_cam = measured["CAM, context_bias 1.0"]
rotation = measured["rotation baseline (channel average)"]
reference = measured["reference: object mask at CAM resolution"]
part_focus = 1.5  # minimal part density / object density (see the criterion above)
margin = 0.05  # minimal shift of mass share for properties 2 and 3 (see above)
glue_text("density", (
    f"Part density over object density: CAM {density['CAM, context_bias 0.0']:.2f} (test "
    f"accuracy {neutral_cam['accuracy']:.1%}); at the CAM's resolution an evenly covered "
    f"object scores {density['reference: object mask at CAM resolution']:.2f}, the part "
    f"alone {density['reference: part mask at CAM resolution']:.2f}."))
checks = [
    (
        f"1. CAM concentrates on the part (part density >= {part_focus}x object density)",
        density["CAM, context_bias 0.0"] >= part_focus,
    ),
    (
        f"2. context bias moves CAM mass off the object (by >= {100 * margin:.0f} points)",
        biased_cam["object"] <= neutral_cam["object"] - margin,
    ),
    (
        "3. rotation attention puts more mass outside the object than an evenly covered "
        f"object does at its resolution (by >= {100 * margin:.0f} points)",
        reference["object"] - rotation["object"] >= margin,
    ),
]
show(pd.DataFrame({"property": [claim for claim, _ in checks],
                   "verdict": ["holds" if holds else "DOES NOT HOLD" for _, holds in checks]}))

# %% [markdown] tags=[]
# {glue:md}`density`

# %% tags=["hide-input"]
for name, seconds in timer.seconds.items():
    print(f"{name}: {seconds:.0f} s")
