"""ContraCAM: Mo et al., "Object-aware Contrastive Learning for Debiased Scene
Representation" (NeurIPS 2021), in the shared runner's terms.

- :mod:`~coloc.contracam.config`: :class:`ContraCAMConfig`, the CPU and paper profiles;
- :mod:`~coloc.contracam.model`: MoCo v2 and BYOL as single modules;
- :mod:`~coloc.contracam.augment`: the two-view augmentation and the debiasing batch
  transforms (OA-Crop, BG-Mixup, BG-HardMix, Mixup, CutMix);
- :mod:`~coloc.contracam.maps`: the contrastive score, ContraCAM (iterative, expansion
  trick), masks, boxes and the optional dense CRF;
- :mod:`~coloc.contracam.linear`: linear evaluation on frozen features;
- :mod:`~coloc.contracam.method`: :data:`METHOD` and :func:`run` for :mod:`coloc.runs`.
"""

from coloc.contracam.config import (
    CPU_PROFILE,
    DEBIAS,
    PAPER_PROFILE,
    SCENES,
    SSL_METHODS,
    ContraCAMConfig,
)
from coloc.contracam.linear import extract_features, linear_evaluation
from coloc.contracam.maps import (
    contracam,
    contrastive_score,
    dense_crf,
    expand_resolution,
    gradcam,
    gradcam_weights,
    object_boxes,
    object_masks,
)
from coloc.contracam.method import (
    METHOD,
    Priors,
    build_model,
    find_run,
    make_step,
    mask_miou,
    precompute_priors,
    probe_maps,
    profile,
    run,
    score_maps,
)
from coloc.contracam.model import BYOL, Mix, MoCo

__all__ = [
    "BYOL", "CPU_PROFILE", "DEBIAS", "METHOD", "PAPER_PROFILE", "SCENES", "SSL_METHODS",
    "ContraCAMConfig", "Mix", "MoCo", "Priors", "build_model", "contracam",
    "contrastive_score", "dense_crf", "expand_resolution", "extract_features", "find_run",
    "gradcam", "gradcam_weights", "linear_evaluation", "make_step", "mask_miou",
    "object_boxes", "object_masks",
    "precompute_priors", "probe_maps", "profile", "run", "score_maps",
]
