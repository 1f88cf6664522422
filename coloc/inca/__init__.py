"""InCA (Ki et al., ACCV 2020) and its baseline ADL (Choe & Shim, CVPR 2019).

:mod:`coloc.inca.config` (the run configuration), :mod:`coloc.inca.model` (attention
blocks and masks), :mod:`coloc.inca.losses` (Eq. 2-4), :mod:`coloc.inca.method` (the
runner's method), :mod:`coloc.inca.report` (the chapter's tables and figures).
"""

from coloc.inca.config import INCAConfig
from coloc.inca.method import METHOD, find_run, run, score_maps

profile = INCAConfig.profile

__all__ = ["METHOD", "INCAConfig", "find_run", "profile", "run", "score_maps"]
