# coloc: finding objects without box labels

This book reproduces four papers that localize objects in images without ever seeing a
bounding box during training:

| chapter | paper | supervision | the idea |
|---|---|---|---|
| CAML | Ki et al., *Contrastive Attention Maps for Self-supervised Co-localization*, ICCV 2021 | none (one superclass) | a contrastive loss on attention maps of a pretext-task network, with pixel-wise top-k attention pooling |
| InCA | Ki et al., *In-sample Contrastive Learning and Consistent Attention for WSOL*, ACCV 2020 | class labels | contrast the dropped foreground against the background inside each image |
| WeightMap | *Learning a weight map for WSOL* | class labels | a U-Net that learns which pixels a frozen classifier needs |
| ContraCAM | Mo et al., *Object-aware Contrastive Learning for Debiased Scene Representation*, NeurIPS 2021 | none (contrastive SSL) | class activation maps of a contrastive model, used to debias its augmentations |

Every chapter is a notebook that trains, evaluates, and renders the paper's tables and
figures, with the numbers the paper reports beside the numbers the run measured.

## Two profiles

**The default run** uses an embedded procedural benchmark (`dataset="synthetic"`): images
generated on the fly, with fine-grained classes that differ only by a small part,
backgrounds that a pretext task can cheat on, and optional class-background
correlation. It needs no download and no GPU: every chapter runs on a laptop CPU in a
few minutes, deterministically, and that is the run whose outputs you read here.

**The real profile** is one parameter away. With the dataset under `data_root`,

```bash
papermill book/caml_rotation.ipynb out.ipynb -p dataset cars -p data_root /data
```

runs the paper's configuration (its backbone with ImageNet weights, 224 px, the
paper's schedule) on a GPU.

## The package

Everything a chapter computes is a call into the `coloc` package, which you can use in
your own work:

```python
from coloc.metrics import max_box_acc, pxap, corloc
max_box_acc(score_maps, gt_boxes)   # MaxBoxAccV2, as Choe et al. (CVPR 2020) define it
```

Start with {doc}`metrics`: how every number in this book is computed.
