"""The papers the command line knows: one line per paper package.

Each entry maps a paper's name (its results folder, ``config.PAPER``) to the module
that holds its :class:`coloc.runs.RunConfig` subclass and ``run(config, output_dir, *,
force)``, like :mod:`coloc.cam` and :mod:`coloc.caml`. A new paper joins with one line
here; its options, profiles and allowed values come from its config class.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

from coloc.runs import RunConfig

PAPERS: dict[str, str] = {
    "caml": "coloc.caml",  # Ki et al., ICCV 2021: self-supervised co-localization
    "cam": "coloc.cam",  # the shared CAM baseline (Zhou et al., CVPR 2016)
    "inca": "coloc.inca",  # Ki et al., ACCV 2020: in-sample contrastive learning, WSOL
    "contracam": "coloc.contracam",  # Mo et al., NeurIPS 2021: object-aware contrastive
}


def module(paper: str) -> ModuleType:
    """The package of ``paper``; an unknown name raises ValueError naming the known ones."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; allowed: {', '.join(PAPERS)}")
    return importlib.import_module(PAPERS[paper])


def config_class(paper: str) -> type[RunConfig]:
    """The RunConfig subclass of ``paper``: the one its module defines (a module may
    import other papers' configs, e.g. a frozen CAM classifier's; those are skipped)."""
    package = module(paper)
    found = {cls for _, cls in inspect.getmembers(package, inspect.isclass)
             if issubclass(cls, RunConfig) and cls is not RunConfig
             and cls.__module__.startswith(package.__name__) and cls.PAPER == paper}
    if len(found) != 1:
        raise LookupError(f"{package.__name__} should export one RunConfig subclass with "
                          f"PAPER = {paper!r}; found {sorted(c.__name__ for c in found)}")
    return found.pop()
