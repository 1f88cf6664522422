# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
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

# %% tags=["parameters"]
dataset = "synthetic"  # this chapter shows the synthetic benchmark and checks real data
data_root = "data"  # where the real datasets live (see "Real datasets" below)
image_size = 96  # pixels, for the gallery
evidence_image_size = 64  # pixels, for the short training runs
train_samples = 2000  # images per evidence run
epochs = 5  # per evidence run
batch_size = 64
lr = 0.05
seed = 0
output_dir = None  # results/ at the repository root by default

# %%
import warnings

warnings.filterwarnings("ignore")

from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from coloc import caml
from coloc.cam import CAMClassifier, cam_step, mass_inside
from coloc.data import DATASETS, check, collate_samples, load
from coloc.data.synthetic import FAMILIES, VARIANTS, SyntheticDataset
from coloc.models import build_backbone
from coloc.plots import draw_boxes, grid, show_map
from coloc.run import Timer, config_hash, results_root, seed_everything
from coloc.train import TrainConfig, fit

if dataset != "synthetic":
    raise ValueError(f"this chapter presents the synthetic benchmark; got {dataset!r}")
seed_everything(seed, threads=2)
results = Path(results_root(output_dir)) / "datasets"
timer = Timer()


def show_sample(ax, ds, index, title=None):
    """Image with GT boxes (red), object mask outline (white), part mask (yellow)."""
    sample = ds[index]
    ax.imshow(ds.raw_image(index))
    ax.contour(sample["mask"].numpy() == 1, levels=[0.5], colors="white", linewidths=0.8)
    ax.contour(sample["part_mask"].numpy(), levels=[0.5], colors="yellow", linewidths=1.2)
    draw_boxes(ax, sample["boxes"], "red")
    ax.set_title(title or ds.classes[sample["label"]], fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


# %% [markdown]
# ## Four families, many fine-grained classes
#
# Each family mirrors one co-localization benchmark: birds (CUB), cars (Stanford
# Cars), aircraft (FGVC-Aircraft) and dogs (Stanford Dogs). Within a family all classes
# share the body; only the discriminative part (outlined in yellow) changes. The white
# outline is the GT mask, the red box the GT box. Position, scale (20-70 % of the side)
# and left/right mirroring are random; the pose stays upright.

# %%
fig, axes = grid(len(FAMILIES), 6, size=1.8)
for row, family in enumerate(FAMILIES):
    ds = load(f"synthetic-{family}", split="train", image_size=image_size, seed=seed)
    for col in range(6):
        show_sample(axes[row, col], ds, col)
fig.suptitle("Synthetic training images: GT box (red), mask (white), part (yellow)")
fig.tight_layout()
print({family: SyntheticDataset(families=(family,)).num_classes for family in FAMILIES})

# %% [markdown]
# ## Context bias and multi-object scenes
#
# With `context_bias=0` the background style is drawn independently of the class; with
# `context_bias=1` every image of a class gets that class's background style (sky,
# ground colour, texture, horizon height). The marginal distribution of backgrounds
# does not change, only its correlation with the class. Below, images of one class
# under both settings, then multi-object scenes (1-3 objects of several families).

# %%
neutral = SyntheticDataset("train", image_size, seed=seed, context_bias=0.0)
biased = SyntheticDataset("train", image_size, seed=seed, context_bias=1.0)
scenes = SyntheticDataset("train", image_size, seed=seed, families=FAMILIES, num_objects=(1, 3))
same_class = [i * neutral.num_classes for i in range(6)]  # labels are index % num_classes
fig, axes = grid(3, 6, size=1.8)
for col, index in enumerate(same_class):
    show_sample(axes[0, col], neutral, index, "bias 0")
    show_sample(axes[1, col], biased, index, "bias 1")
    show_sample(axes[2, col], scenes, col, f"{len(scenes[col]['boxes'])} objects")
fig.suptitle(f"Class {neutral.classes[0]!r}: context_bias 0 (top), 1 (middle); multi-object")
fig.tight_layout()

# %% [markdown]
# ## The seven Background Challenge variants
#
# ContraCAM evaluates background bias with the Background Challenge (Xiao et al.,
# 2021). The generator builds its variants exactly, from its clean layers: the object
# on black (`only_fg`), the object's box blacked out (`only_bg_b`), the object removed
# and its region filled with the clean background (`only_bg_t`), and the object pasted
# on the background of another image of the same class (`mixed_same`), of a random
# image (`mixed_rand`) or of the next class (`mixed_next`).

# %%
fig, axes = grid(3, len(VARIANTS), size=1.6)
for col, variant in enumerate(VARIANTS):
    ds = SyntheticDataset("test", image_size, seed=seed, context_bias=1.0, variant=variant)
    for row in range(3):
        axes[row, col].imshow(ds.raw_image(row))
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[0, col].set_title(variant, fontsize=8)
fig.suptitle("Background Challenge variants (context_bias 1, test split)")
fig.tight_layout()

# %% [markdown]
# ## Sizes, positions and class balance
#
# The distributions the chapters' numbers depend on: how large the objects are
# (relative box area; CorLoc at IoU 0.5 is much harder for small objects), where they
# sit, and how many images each class has.

# %%
stats_set = SyntheticDataset("train", evidence_image_size, seed=seed)
loader = torch.utils.data.DataLoader(stats_set, batch_size=250, collate_fn=collate_samples)
boxes, labels = [], []
for batch in loader:
    boxes += [b[0] for b in batch["boxes"]]
    labels += batch["label"].tolist()
boxes = torch.stack(boxes).numpy()
side = float(evidence_image_size)
area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1) / side**2
centres = ((boxes[:, 0] + boxes[:, 2]) / 2 / side, (boxes[:, 1] + boxes[:, 3]) / 2 / side)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
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
fig.suptitle(f"Synthetic birds, train split ({len(stats_set)} images)")
fig.tight_layout()
print(f"box area / image: median {np.median(area):.2f}, 10-90 % {np.quantile(area, 0.1):.2f}"
      f"-{np.quantile(area, 0.9):.2f}")

# %% [markdown]
# ## Real datasets
#
# Each real dataset lives in its own folder under `data_root`, in its official layout.
# `coloc.data.load(name, root=data_root, split=..., image_size=...)` reads it and
# returns the same sample structure as the synthetic set, with the protocol's
# transforms (test: resize without crop, boxes scaled and truncated; train: resize and
# random crop, with flip for WSOL or reflect padding for PsyNet). A missing or broken
# file raises an error that names the path, the line, the expected layout and where
# the dataset is published. The table says what this machine has.

# %%
rows = []
for name, info in DATASETS.items():
    missing = check(name, data_root)
    rows.append({"name": name, "dataset": info.title, "classes": info.num_classes,
                 "splits": ", ".join(info.splits), "folder": f"{data_root}/{info.subdir}",
                 "status": "present" if not missing else f"missing: {', '.join(missing[:3])}"
                 + (" ..." if len(missing) > 3 else ""),
                 "get it from": info.url})
pd.DataFrame(rows).set_index("name")

# %% [markdown]
# The expected layout of each, relative to `data_root`:

# %%
for name, info in DATASETS.items():
    print(f"--- {name}: {info.title} ({info.url})")
    print(info.tree.rstrip())

# %% [markdown]
# For every dataset that is present, a few test samples with their GT (nothing is
# shown for those that are missing; the table above says what to add).

# %%
present = [name for name in DATASETS if not check(name, data_root)]
for name in present:
    ds = load(name, root=data_root, split="test", image_size=224)
    fig, axes = grid(1, 4, size=2.4)
    for col in range(min(4, len(ds))):
        sample = ds[col]
        show_map(axes[0, col], sample["image"], gt_boxes=sample["boxes"], title=name)
print(f"present under {data_root!r}: {present or 'none'}")

# %% [markdown]
# ## Evidence: does the benchmark fail the way the papers' data does?
#
# Three short CPU training runs check the properties the chapters rely on. For a
# score map we measure the share of its (positive) mass inside the discriminative part
# and inside the object, on 500 test images, beside the share of the image those
# regions cover: a map that ignored location would put mass in proportion to area.
#
# 1. **Part focus.** A classifier (4-block CNN, GAP, linear) trained on the 12
#    fine-grained bird classes: its CAM should concentrate on the part, far beyond the
#    part's area.
# 2. **Context bias spreads CAM.** The same classifier trained with `context_bias=1`:
#    the background now predicts the class too, and CAM mass should move off the
#    object.
# 3. **Rotation smears onto the background.** The rotation-pretext baseline of the CAML
#    chapter (PsyNet-style, channel-average attention): a measurable share of its
#    attention should fall outside the object.


# %%
def cam_run(context_bias: float) -> CAMClassifier:
    """Train (or load) the fine-grained CAM classifier of one context-bias setting."""
    train = SyntheticDataset("train", evidence_image_size, num_samples=train_samples,
                             seed=seed, context_bias=context_bias, augment=True)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         extra={"context_bias": context_bias, "samples": train_samples,
                                "image_size": evidence_image_size, "backbone": "small_cnn"})
    torch.manual_seed(seed)
    model = CAMClassifier(build_backbone("small_cnn"), train.num_classes)
    with timer(f"CAM, context_bias {context_bias}"):
        fit(model, train, cam_step, config,
            results / f"cam-bias{context_bias}-{config_hash(asdict(config))}")
    return model


def cam_shares(model: CAMClassifier, context_bias: float, n: int = 500) -> dict:
    """Mean CAM mass shares on the test split (GT class), and accuracy."""
    test = SyntheticDataset("test", evidence_image_size, num_samples=n, seed=seed,
                            context_bias=context_bias)
    batch = collate_samples([test[i] for i in range(n)])
    with torch.no_grad():
        output = model(batch["image"])
        maps = caml.upsample_maps(model.cam(output["features"], batch["label"]),
                                  evidence_image_size)
    obj, part = batch["mask"] == 1, batch["part_mask"]
    return {"part": mass_inside(maps, part).nanmean().item(),
            "object": mass_inside(maps, obj).nanmean().item(),
            "part area": part.double().mean().item(),
            "object area": obj.double().mean().item(),
            "accuracy": (output["logits"].argmax(1) == batch["label"]).double().mean().item()}


measured = {f"CAM, context_bias {b}": cam_shares(cam_run(b), b) for b in (0.0, 1.0)}

# %% [markdown]
# The rotation baseline is exactly the CAML chapter's baseline run (same configuration,
# so it is trained once and shared through `results/`).

# %%
baseline = caml.run(caml.profile("synthetic", use_caml=False, pooling="caam", seed=seed),
                    output_dir)
test = SyntheticDataset("test", baseline.config.image_size, num_samples=500, seed=seed)
batch = collate_samples([test[i] for i in range(len(test))])
maps = caml.attention_maps(baseline.model(), batch["image"])
obj, part = batch["mask"] == 1, batch["part_mask"]
measured["rotation baseline (channel average)"] = {
    "part": mass_inside(maps, part).nanmean().item(),
    "object": mass_inside(maps, obj).nanmean().item(),
    "part area": part.double().mean().item(),
    "object area": obj.double().mean().item(),
}

# %% [markdown]
# ### The three properties, measured
#
# Shares of each map's mass inside the part and inside the object (mean over 500 test
# images), beside the share of the image those regions cover, and the classifiers'
# test accuracy on the 12 classes.

# %%
evidence = pd.DataFrame(measured).T.mul(100).round(1)
evidence["outside object (%)"] = (100 - evidence["object"]).round(1)
evidence["part / area"] = (evidence["part"] / evidence["part area"]).round(1)
evidence.rename(columns={c: f"{c} (%)" for c in ("part", "object", "part area",
                                                  "object area", "accuracy")})

# %%
neutral_cam = measured["CAM, context_bias 0.0"]
biased_cam = measured["CAM, context_bias 1.0"]
rotation = measured["rotation baseline (channel average)"]
checks = {
    "1. CAM concentrates on the part (mass share > 3x the part's area share)":
        neutral_cam["part"] > 3 * neutral_cam["part area"],
    "2. context bias moves CAM mass off the object":
        biased_cam["object"] < neutral_cam["object"],
    "3. rotation attention puts a measurable share (> 25 %) outside the object":
        1 - rotation["object"] > 0.25,
}
for claim, holds in checks.items():
    print(f"{'holds' if holds else 'DOES NOT HOLD'}: {claim}")
print("time:", {name: f"{seconds:.0f} s" for name, seconds in timer.seconds.items()})
