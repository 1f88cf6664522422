"""coloc: models, losses, metrics, data and training for the coloc reproducibility book.

Four papers on finding objects without box labels: CAML (ICCV 2021), InCA (ACCV 2020),
WeightMap (WSOL weight maps) and ContraCAM (NeurIPS 2021). See the book in ``book/``.
"""

__version__ = "0.1.0"
