"""The papers the command line knows: one line per paper package.

Each entry maps a paper's name (its results folder, ``config.PAPER``) to the module
that exports ``profile`` of its :class:`coloc.runs.RunConfig` subclass and ``run(config,
output_dir, *, force)``, like :mod:`coloc.cam` and :mod:`coloc.caml`. A new paper joins
with one line here; its options, profiles and allowed values come from its config class.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from coloc.runs import RunConfig

PAPERS: dict[str, str] = {
    "caml": "coloc.caml",  # Ki et al., ICCV 2021: self-supervised co-localization
    "cam": "coloc.cam",  # the shared CAM baseline (Zhou et al., CVPR 2016)
    "inca": "coloc.inca",  # Ki et al., ACCV 2020: in-sample contrastive learning, WSOL
    "weightmap": "coloc.weightmap",  # a learned weight map over a frozen classifier
    "contracam": "coloc.contracam",  # Mo et al., NeurIPS 2021: object-aware contrastive
}


def module(paper: str) -> ModuleType:
    """The package of ``paper``; an unknown name raises ValueError naming the known ones."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; allowed: {', '.join(PAPERS)}")
    return importlib.import_module(PAPERS[paper])


def config_class(paper: str) -> type[RunConfig]:
    """The RunConfig subclass of ``paper``: the one whose ``profile`` its module exports
    (``profile = CAMConfig.profile``, as a chapter calls it); a module may define or
    import other configs (a frozen classifier's, e.g. WeightMap's Siamese f)."""
    package = module(paper)
    cls = getattr(getattr(package, "profile", None), "__self__", None)
    if not (isinstance(cls, type) and issubclass(cls, RunConfig) and cls.PAPER == paper):
        raise LookupError(f"{package.__name__} should export `profile` of a RunConfig "
                          f"subclass with PAPER = {paper!r}; found {cls!r}")
    return cls
