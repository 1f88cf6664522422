# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # coloc: finding objects without box labels
#
# This book reproduces four papers that localize objects in images without ever seeing
# a bounding box during training, and it is the reference implementation of each: every
# equation is in the text beside the code that implements it, every table and figure of
# the papers is rendered with the numbers the book's runs measured beside the published
# ones, and every comparative claim of the papers is decided on those runs.
#
# | part | paper | supervision | the idea |
# |---|---|---|---|
# | CAML | {cite}`ki2021caml`, ICCV | none (one superclass) | a contrastive loss on attention maps of a pretext-task network, with pixel-wise top-k attention pooling |
# | InCA | {cite}`ki2020inca`, ACCV | class labels | contrast the dropped foreground against the background inside each image |
# | WeightMap | {cite}`shaharabany2021weightmap` | class labels | a U-Net that learns which pixels a frozen classifier needs |
# | ContraCAM | {cite}`mo2021contracam`, NeurIPS | none (contrastive SSL) | class activation maps of a contrastive model, used to debias its augmentations |
#
# ## The headline so far
#
# {glue:md}`headline:myst`
#
# ## The parts of the book
#
# - **Foundations**: {ref}`metrics` (how every number here is computed, equal to the
#   field's reference evaluator {cite}`choe2020evaluating`) and
#   {ref}`datasets` (the synthetic benchmark, the real datasets' layouts, and evidence
#   that the benchmark shows the failures the papers fix).
# - **CAML**: {ref}`caml-rotation` (the method, Tables 1-3, Figures 1-3, 5, 7, 8),
#   {ref}`caml-ablations` (Tables 4-6, Figures 4 and 6, supplement Tables 1-2),
#   {ref}`caml-pretext` (Table 7, supplement Table 3) and {ref}`caml-summary` (Tables 2
#   and 7 over every dataset with recorded runs).
# - **InCA**: {ref}`inca` (the method, the val search of Table 1, CAM, ADL and InCA on
#   three seeds, Tables 2-7, Figures 1-5).
# - **WeightMap**: {ref}`weightmap` (Methods I and II over the shared CAM classifier,
#   Tables 1-6, the early-stopping score, Figures 1, 4-8).
# - **ContraCAM**: {ref}`contracam` (maps of MoCo v2 without labels, transfer to unseen
#   families, OA-Crop on multi-object scenes, the Background Challenge and BG-Mixup,
#   Tables 1-8, Figures 1-4).
#
# A last part, setting all four side by side, is still to be written.
#
# ## Run it yourself
#
# Install, then run the main chapter on the embedded benchmark (CPU, no download):
#
# ```bash
# python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[all]"
# papermill book/caml_rotation.ipynb out.ipynb
# ```
#
# {glue:md}`timing` Pass the tests (unit tests, and every notebook re-executed and
# compared with the outputs shown here):
#
# ```bash
# pytest --nbval
# ```
#
# One parameter switches a chapter to a real dataset and the paper's configuration (its
# backbone with ImageNet weights, 224 px, the paper's schedule) on a GPU:
#
# ```bash
# papermill book/caml_rotation.ipynb out.ipynb -p dataset cars -p data_root /data
# ```
#
# ## How to read this book
#
# - **Two profiles.** What you read is the default run: an embedded procedural benchmark
#   (`dataset="synthetic"`, 64 px, a small CNN, a few minutes per chapter on two CPU
#   cores, deterministic). Its numbers show the *direction* of each comparison; the
#   published rows are the papers' real-data numbers, set beside ours, never copied
#   into a measured column. A row that was not run says "not run" and why.
# - **Equations** are written out and numbered as in the paper, next to the name of the
#   `coloc` function that implements them.
# - **Numbers in sentences** are computed by the chapter and pasted into the text
#   (MyST-NB `glue`); none is typed by hand. When a paper's claim does not hold here, a
#   sentence says so.
# - **Claims** are decided with a resolution measured from seed spread: a difference
#   smaller than $2\sqrt{2}$ times the standard deviation over seeds is "within noise".
#   Choices the papers leave open are made on the validation split; the test split is
#   evaluated once per chosen configuration. Each chapter records its claims as data
#   (`results/claims/`).
# - **Plumbing is hidden**: parameter, import and settings cells are folded (click to
#   open); figures are numbered and captioned with what to look at.

# %% tags=["hide-input"]
import warnings

warnings.filterwarnings("ignore")

from coloc import caml, report
from coloc.report import glue_text

config = caml.profile("synthetic")
by_seed = caml.run_seeds(config, 3)  # the rotation chapter's runs, loaded
headline = report.seed_summary(by_seed)
counts = []
for chapter in ("caml_rotation", "caml_ablations", "caml_pretext"):
    claims = report.read_claims(chapter, config)
    if claims is not None:
        counts.append(f"{sum(c.verdict == report.HOLDS for c in claims)} of {len(claims)} "
                      f"claims of {{ref}}`{chapter.replace('_', '-')}` hold")
glue_text("headline", (
    f"**CAML**, on the synthetic bird benchmark, three seeds: test CorLoc@0.5 "
    f"{headline.loc[1, 'CorLoc@0.5']} % against the PsyNet-style baseline's "
    f"{headline.loc[0, 'CorLoc@0.5']} %; MaxBoxAccV2 {headline.loc[1, 'MaxBoxAccV2 mean']} "
    f"against {headline.loc[0, 'MaxBoxAccV2 mean']}. "
    + ("; ".join(counts) + "." if counts else "The claims are recorded when the CAML "
       "chapters run.")))
train = sum(r.seconds["train"] for rs in by_seed.values() for r in rs) / 6
glue_text("timing", (f"Each of the rotation chapter's runs trains in about {train:.0f} s "
                     "on this book's two CPU cores."))
