"""WeightMap: Shaharabany and Wolf, "Learning a Weight Map for Weakly-Supervised
Localization" (arXiv 2111.14131, 2021).

The folder, file by file (the same names as every paper's folder):

- ``config``: :class:`WeightMapConfig` (g's run, its f's run), :class:`SiameseConfig`,
  the CPU and paper profiles.
- ``model``: g (the encoder-decoder with skips and a final sigmoid), the Siamese f, and
  g over a frozen f.
- ``losses``: Eq. 1 (Method I), Eq. 2-4 (Method II), the regularizer R.
- ``stopping``: Eq. 5-6, the unsupervised early-stopping score S.
- ``method``: f, g, the steps and maps, wired into the shared runner: :func:`run`.
- ``report``: the chapter's tables and figures.

Published numbers are :mod:`coloc.reference.weightmap`.
"""

from coloc.weightmap.config import (
    CPU_PROFILE,
    METHODS,
    PAPER_PROFILE,
    STOPPING,
    WEIGHTMAP_DATASETS,
    SiameseConfig,
    WeightMapConfig,
)
from coloc.weightmap.method import (
    METHOD,
    SIAMESE,
    build_model,
    classify,
    f_run,
    find_run,
    make_step,
    probe_maps,
    run,
    score_maps,
)
from coloc.weightmap.stopping import stopping_score

profile = WeightMapConfig.profile
from_parameters = WeightMapConfig.from_parameters

__all__ = [
    "CPU_PROFILE",
    "METHOD",
    "METHODS",
    "PAPER_PROFILE",
    "SIAMESE",
    "STOPPING",
    "WEIGHTMAP_DATASETS",
    "SiameseConfig",
    "WeightMapConfig",
    "build_model",
    "classify",
    "f_run",
    "find_run",
    "from_parameters",
    "make_step",
    "probe_maps",
    "profile",
    "run",
    "score_maps",
    "stopping_score",
]
