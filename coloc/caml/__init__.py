"""CAML: Ki, Uh, Choe and Byun, "Contrastive Attention Maps for Self-supervised
Co-localization", ICCV 2021, and its PsyNet-style baseline.

The folder, file by file (every paper's folder has the same names):

- ``config``: :class:`CAMLConfig`, the CPU and paper profiles; :func:`profile` resolves
  a dataset's configuration, :func:`from_parameters` a chapter's parameters cell.
- ``pretext``: the pretext transforms (rotation, scale, translation, flips, PST) with
  their inverses (Sec. 3.2).
- ``ptap``: ECA channel weights, pixel-wise top-k pooling (PTAP, Eq. 1-2) and CAAM.
- ``model``: the pretext network (backbone, pooling, one head per transform).
- ``losses``: ``L_cls`` and ``L_caml`` (Eq. 3-6).
- ``method``: the model, the training step and the score maps, wired into the shared
  runner: :func:`run`, :func:`find_run`.
- ``report``: the chapters' tables and figures; ``summary``: Tables 2 and 7 over every
  dataset.

What every paper shares (run store, evaluator, report kit, backbones, data) is in the
flat core of :mod:`coloc`; published numbers are :mod:`coloc.reference.caml`.
"""

from coloc.caml import report, summary
from coloc.caml.config import (
    CAML_DATASETS,
    CPU_PROFILE,
    DATASET_NAMES,
    PAPER_PROFILE,
    POOLINGS,
    PRETEXTS,
    CAMLConfig,
)
from coloc.caml.method import (
    METHOD,
    attention_maps,
    average_pooling_maps,
    build_model,
    explain,
    find_run,
    make_step,
    probe_maps,
    run,
    run_seeds,
    score_maps,
    triplet_distances,
)

profile = CAMLConfig.profile
from_parameters = CAMLConfig.from_parameters

__all__ = [
    "CAML_DATASETS",
    "CPU_PROFILE",
    "DATASET_NAMES",
    "METHOD",
    "PAPER_PROFILE",
    "POOLINGS",
    "PRETEXTS",
    "CAMLConfig",
    "attention_maps",
    "average_pooling_maps",
    "build_model",
    "explain",
    "find_run",
    "from_parameters",
    "make_step",
    "probe_maps",
    "profile",
    "report",
    "run",
    "run_seeds",
    "score_maps",
    "summary",
    "triplet_distances",
]
