"""Pretext transforms with labels and inverses on attention maps (CAML Sec. 3.2, Table 7).

Each transform has ``num_classes`` labels, and for a batch and one label per image:

- ``apply(x, labels)`` transforms images ``[B, C, H, W]`` or maps ``[B, H, W]`` /
  ``[B, 1, H, W]`` (CAML's ``T``: image -> transformed image, ``A_ori -> A_ori2trans``);
- ``invert(maps, labels)`` brings maps of the transformed image back onto the original
  (``T^-1``: ``A_trans -> A_trans2ori``);
- ``valid_mask(labels, (h, w))`` ``[B, h, w]`` bool marks where ``invert`` holds content of
  the transformed view; elsewhere (the border lost by zooming in, the part translated
  out of frame, the quadrants PST drops) it is zero and the loss must ignore it.

All transforms are resolution-free: geometry is defined in the normalized coordinates
of ``F.affine_grid`` (``align_corners=False``: -1 and 1 are the outer image edges), so
the same label transforms a 224 px image and its 28x28 attention map alike. Rotation
and flips are exact (``torch.rot90``/``flip``); scale, translation and PST resample
bilinearly (exact for PST on even sizes, whose shift is half the side). Batches are
processed at once, grouped by label where the operation differs per label.

Class sets follow PsyNet's released code (CAML builds on it and reproduces its PST):
rotation 0/90/180/270 degrees; scale with sampling-grid factors 1.3, 1.0, 0.7 (content
shrunk by 1/1.3, kept, enlarged by 1/0.7); translation by -0.1, 0, +0.1 of the
half-side along both axes; PST (point symmetric transformation) with 5 classes.
Fills follow CAML Sec. 4.2: reflection for scale (and PST, whose construction relies on
it), zeros for translation. Label 0 of rotation/flips and the middle label of
scale/translation/PST is the identity.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Content-carrying threshold for masks carried through a bilinear inverse (Compose).
_FULL = 1.0 - 1e-4


def _as_4d(x: Tensor) -> tuple[Tensor, bool]:
    if x.dim() == 3:
        return x.unsqueeze(1), True
    if x.dim() == 4:
        return x, False
    raise ValueError(
        f"expected images [B, C, H, W] or maps [B, H, W] / [B, 1, H, W], got shape {tuple(x.shape)}"
    )


class PretextTransform(ABC):
    """A family of ``num_classes`` geometric transforms, one per pretext label."""

    name: str
    num_classes: int

    @property
    def heads(self) -> dict[str, int]:
        """Classification heads the pretext network needs: ``{name: num_classes}``."""
        return {self.name: self.num_classes}

    def head_labels(self, labels: Tensor) -> dict[str, Tensor]:
        """Per-head targets for :attr:`heads`, from this transform's labels ``[B]``."""
        return {self.name: labels}

    def sample_labels(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Uniform labels ``[batch_size]`` (int64, CPU), identity included, as PsyNet draws."""
        return torch.randint(self.num_classes, (batch_size,), generator=generator)

    def apply(self, x: Tensor, labels: Tensor) -> Tensor:
        """Transform images ``[B, C, H, W]`` or maps ``[B, H, W]``/``[B, 1, H, W]`` alike."""
        x4, squeeze = _as_4d(x)
        out = self._apply(x4, self._check(labels, x4))
        return out.squeeze(1) if squeeze else out

    def invert(self, maps: Tensor, labels: Tensor) -> Tensor:
        """Map ``[B, H, W]``/``[B, C, H, W]`` of transformed images back onto the originals.

        Zero where :meth:`valid_mask` is False.
        """
        x4, squeeze = _as_4d(maps)
        out = self._invert(x4, self._check(labels, x4))
        return out.squeeze(1) if squeeze else out

    def valid_mask(self, labels: Tensor, size: tuple[int, int]) -> Tensor:
        """Bool ``[B, h, w]``: pixels of the original frame that :meth:`invert` recovers."""
        return torch.ones(len(labels), *size, dtype=torch.bool, device=labels.device)

    def _check(self, labels: Tensor, x: Tensor) -> Tensor:
        if labels.dim() != 1 or len(labels) != len(x) or labels.is_floating_point():
            raise ValueError(
                f"labels must be an integer tensor [B] with B = {len(x)}, got "
                f"{labels.dtype} {tuple(labels.shape)}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"{self.name} labels must be in 0..{self.num_classes - 1}, got values "
                f"{labels.min().item()}..{labels.max().item()}"
            )
        return labels.to(x.device)

    @abstractmethod
    def _apply(self, x: Tensor, labels: Tensor) -> Tensor: ...

    @abstractmethod
    def _invert(self, x: Tensor, labels: Tensor) -> Tensor: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, num_classes={self.num_classes})"


class Rotation(PretextTransform):
    """RotNet's rotation: label ``k`` rotates by ``k * 90`` degrees counter-clockwise.

    Exact (``torch.rot90``); needs square inputs. Fully invertible.
    """

    name = "rotation"
    num_classes = 4

    @staticmethod
    def _rotate(x: Tensor, quarter_turns: Tensor) -> Tensor:
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"rotation needs square inputs, got {tuple(x.shape[-2:])}")
        out = torch.empty_like(x)
        for k in range(4):
            chosen = quarter_turns == k
            out[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
        return out

    def _apply(self, x: Tensor, labels: Tensor) -> Tensor:
        return self._rotate(x, labels)

    def _invert(self, x: Tensor, labels: Tensor) -> Tensor:
        return self._rotate(x, (4 - labels) % 4)


class Flip(PretextTransform):
    """Horizontal (``dim=-1``) or vertical (``dim=-2``) flip: label 1 flips, 0 keeps.

    Exact and its own inverse.
    """

    num_classes = 2

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self.dim = dim

    def _apply(self, x: Tensor, labels: Tensor) -> Tensor:
        return torch.where(labels.view(-1, 1, 1, 1) == 1, x.flip(self.dim), x)

    _invert = _apply


class AffineTransform(PretextTransform):
    """A transform per label given by the sampling map ``x_in = M x_out + t``.

    ``matrices`` ``[n, 2, 3]`` (``[M | t]``, as ``F.affine_grid`` takes them) map output
    coordinates to the input coordinates they read; ``padding`` (``"reflection"`` or
    ``"zeros"``) fills reads outside the image. The inverse reads the transformed map at
    ``M^-1 (u - t)`` with zeros outside; with reflection fill, ``t`` is first taken modulo
    the reflection period 4 into [-2, 2), which picks the unreflected copy of the
    content (this is what makes PST invertible on its kept quadrant).
    """

    def __init__(self, name: str, matrices: Sequence[Sequence[Sequence[float]]], padding: str):
        if padding not in ("reflection", "zeros"):
            raise ValueError(f"padding must be 'reflection' or 'zeros', got {padding!r}")
        self.name = name
        self.padding = padding
        self.theta = torch.tensor(matrices, dtype=torch.float64)
        self.num_classes = len(self.theta)
        linear, shift = self.theta[:, :, :2], self.theta[:, :, 2]
        if padding == "reflection":
            shift = torch.remainder(shift + 2.0, 4.0) - 2.0
        inverse = torch.linalg.inv(linear)
        self.inverse_theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(-1))], dim=-1)

    @staticmethod
    def _grid(theta: Tensor, labels: Tensor, shape: torch.Size, like: Tensor) -> Tensor:
        matrices = theta.to(device=like.device, dtype=like.dtype)[labels]
        return F.affine_grid(matrices, list(shape), align_corners=False)

    def _apply(self, x: Tensor, labels: Tensor) -> Tensor:
        grid = self._grid(self.theta, labels, x.shape, x)
        return F.grid_sample(x, grid, padding_mode=self.padding, align_corners=False)

    @staticmethod
    def _inside(grid: Tensor) -> Tensor:
        """Reads ``[B, h, w, 2]`` that land within the pixel centres of the map they read.

        Between the outermost pixel centres and the edge, bilinear reads would mix in the
        zero fill, so those pixels count as lost too (a tolerance absorbs rounding).
        """
        h, w = grid.shape[1:3]
        tol = 1e-5
        inside_x = grid[..., 0].abs() <= 1.0 - 1.0 / w + tol
        inside_y = grid[..., 1].abs() <= 1.0 - 1.0 / h + tol
        return inside_x & inside_y

    def _invert(self, x: Tensor, labels: Tensor) -> Tensor:
        grid = self._grid(self.inverse_theta, labels, x.shape, x)
        out = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        return out * self._inside(grid).unsqueeze(1)

    def valid_mask(self, labels: Tensor, size: tuple[int, int]) -> Tensor:
        like = torch.empty(0, dtype=torch.float32, device=labels.device)
        shape = torch.Size((len(labels), 1, *size))
        return self._inside(self._grid(self.inverse_theta, labels, shape, like))


class Scale(AffineTransform):
    """Isotropic scale about the centre, reflection fill (CAML Sec. 4.2).

    ``grid_scales`` are PsyNet's sampling factors: ``s > 1`` shrinks the content by
    ``1 / s`` and fills the border by reflection (fully invertible); ``s < 1`` enlarges
    it (the original's border beyond ``|u| > s`` is lost: ``valid_mask`` False there).
    """

    def __init__(self, grid_scales: Sequence[float] = (1.3, 1.0, 0.7)) -> None:
        if any(s <= 0 for s in grid_scales):
            raise ValueError(f"grid_scales must be > 0, got {tuple(grid_scales)}")
        super().__init__("scale", [[[s, 0, 0], [0, s, 0]] for s in grid_scales], "reflection")


class Translation(AffineTransform):
    """Diagonal translation, zero fill (CAML Sec. 4.2), PsyNet's 3 classes.

    Label ``i`` reads the input at ``x + (i - 1) * shift`` on both axes (``shift`` in
    half-sides: 0.1 moves content by 5 % of the side); the part moved out of frame is
    lost (``valid_mask`` False) and the vacated strip is zeros (the mean colour of an
    ImageNet-normalized image).
    """

    def __init__(self, shift: float = 0.1) -> None:
        offsets = [(i - 1) * shift for i in range(3)]
        super().__init__("translation", [[[1, 0, t], [0, 1, t]] for t in offsets], "zeros")


class PST(AffineTransform):
    """PsyNet's point symmetric transformation (Baek et al., AAAI 2020), 5 classes.

    Label 2 is the identity; labels 0, 1, 3, 4 read the input at
    ``(x + sx * o, y + sy * o)`` with ``(sx, sy) = (-1, +1), (-1, -1), (+1, +1), (+1, -1)``
    and reflection padding, ``o = 3`` half-sides (PsyNet's released code). Reflection
    has period 4, so this is a shift by half the side with mirrored copies: one quadrant
    of the image (e.g. the top-left for (+1, +1)) fills the output four times,
    mirrored about both centre lines, which makes the output point-symmetric about its
    centre. The inverse recovers that quadrant; the other three are lost.
    """

    SIGNS = ((-1, 1), (-1, -1), (0, 0), (1, 1), (1, -1))

    def __init__(self, offset: float = 3.0) -> None:
        matrices = [[[1, 0, sx * offset], [0, 1, sy * offset]] for sx, sy in self.SIGNS]
        super().__init__("pst", matrices, "reflection")


class Compose(PretextTransform):
    """Several transforms applied in order, with a combined label space (CAML supp. D).

    A label encodes one label per component in mixed radix (first component most
    significant): ``num_classes`` is the product, and :meth:`head_labels` splits it
    back so the network keeps one head per component, as PsyNet does for combined
    transforms. ``invert`` undoes the components in reverse order.
    """

    def __init__(self, transforms: Sequence[PretextTransform]) -> None:
        names = [t.name for t in transforms]
        if len(transforms) < 2 or len(set(names)) != len(names):
            raise ValueError(f"Compose needs two or more distinct transforms, got {names}")
        self.transforms = list(transforms)
        self.name = "+".join(names)
        self.num_classes = math.prod(t.num_classes for t in transforms)

    @property
    def heads(self) -> dict[str, int]:
        return {t.name: t.num_classes for t in self.transforms}

    def split(self, labels: Tensor) -> list[Tensor]:
        """Component labels, in order, from combined labels ``[B]``."""
        parts = []
        for t in reversed(self.transforms):
            parts.append(labels % t.num_classes)
            labels = labels // t.num_classes
        return parts[::-1]

    def head_labels(self, labels: Tensor) -> dict[str, Tensor]:
        return {t.name: part for t, part in zip(self.transforms, self.split(labels), strict=True)}

    def _apply(self, x: Tensor, labels: Tensor) -> Tensor:
        for t, part in zip(self.transforms, self.split(labels), strict=True):
            x = t.apply(x, part)
        return x

    def _invert(self, x: Tensor, labels: Tensor) -> Tensor:
        pairs = list(zip(self.transforms, self.split(labels), strict=True))
        for t, part in reversed(pairs):
            x = t.invert(x, part)
        return x * self.valid_mask(labels, tuple(x.shape[-2:])).unsqueeze(1)

    def valid_mask(self, labels: Tensor, size: tuple[int, int]) -> Tensor:
        """Valid where every component's inverse, carried back to the original, has content."""
        valid = torch.ones(len(labels), *size, dtype=torch.bool, device=labels.device)
        pairs = list(zip(self.transforms, self.split(labels), strict=True))
        for t, part in reversed(pairs):
            # invert is zero where t loses content, and mixes in zeros next to it
            valid = t.invert(valid.float(), part) >= _FULL
        return valid


def _components() -> dict[str, PretextTransform]:
    return {
        "rotation": Rotation(),
        "scale": Scale(),
        "translation": Translation(),
        "hflip": Flip("hflip", dim=-1),
        "vflip": Flip("vflip", dim=-2),
        "pst": PST(),
    }


TRANSFORMS = tuple(_components())


def build_transform(name: str) -> PretextTransform:
    """A pretext transform by name, with the default (PsyNet) class sets.

    One of :data:`TRANSFORMS` (``rotation, scale, translation, hflip, vflip, pst``) or
    several joined by ``+``, applied in the order written: CAML supplement D uses
    ``"rotation+scale"`` and ``"scale+translation"`` (we scale first, so the zero strip
    of the translation stays a clean strip rather than being scaled and reflected).
    """
    components = _components()
    parts = name.split("+")
    unknown = [p for p in parts if p not in components]
    if unknown or not name:
        raise ValueError(
            f"unknown transform {name!r}: use one of {TRANSFORMS} or several joined by '+'"
        )
    if len(parts) == 1:
        return components[name]
    return Compose([components[p] for p in parts])
