"""One plotting style for the book: images, score-map overlays, boxes and curves.

Colours follow the papers' figures: ground-truth boxes red, predicted boxes green.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from coloc.data.common import denormalize_image

GT_COLOUR = "red"
PRED_COLOUR = "lime"
SCORE_CMAP = "jet"


def to_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An ImageNet-normalized ``[3, H, W]`` tensor (or an HxWx3 array) as HxWx3 in [0, 1]."""
    if isinstance(image, torch.Tensor):
        return denormalize_image(image.detach().cpu().float()).permute(1, 2, 0).numpy()
    return np.asarray(image)


def draw_boxes(ax: Axes, boxes: torch.Tensor | np.ndarray | Sequence, colour: str,
               linewidth: float = 2.0) -> None:
    """Draw ``[K, 4]`` inclusive ``(x0, y0, x1, y1)`` boxes on ``ax``."""
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=float).reshape(-1, 4):
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                               edgecolor=colour, linewidth=linewidth))


def show_map(ax: Axes, image: torch.Tensor | np.ndarray | None,
             score_map: torch.Tensor | np.ndarray | None = None,
             gt_boxes: torch.Tensor | np.ndarray | None = None,
             pred_boxes: torch.Tensor | np.ndarray | None = None,
             title: str | None = None, alpha: float = 0.5) -> None:
    """Show an image, optionally with a score map overlaid (jet) and GT/predicted boxes."""
    if image is not None:
        ax.imshow(to_numpy_image(image))
    if score_map is not None:
        values = score_map.detach().cpu().numpy() if isinstance(score_map, torch.Tensor) \
            else np.asarray(score_map)
        ax.imshow(values, cmap=SCORE_CMAP, vmin=0, vmax=1,
                  alpha=alpha if image is not None else 1.0)
    if gt_boxes is not None:
        draw_boxes(ax, gt_boxes, GT_COLOUR)
    if pred_boxes is not None:
        draw_boxes(ax, pred_boxes, PRED_COLOUR)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def grid(rows: int, cols: int, size: float = 2.0, **kwargs) -> tuple[plt.Figure, np.ndarray]:
    """A rows x cols figure of square panels; ``axes`` always 2-D."""
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False,
                             **kwargs)
    return fig, axes


def score_colorbar(fig: plt.Figure, axes: np.ndarray | Sequence[Axes],
                   label: str = "score (share of the map's maximum)") -> None:
    """One colour bar for every score-map overlay of ``axes`` (jet over [0, 1], as
    :func:`show_map` draws them), at the right of the panels."""
    mappable = plt.cm.ScalarMappable(cmap=SCORE_CMAP, norm=plt.Normalize(0, 1))
    fig.colorbar(mappable, ax=np.asarray(axes).ravel().tolist(), shrink=0.5, label=label)
