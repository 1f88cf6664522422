"""Procedural fine-grained localization benchmark: the book's offline default data.

Every image is drawn on the fly from ``(seed, split, index)``; nothing is stored.
The scenes recreate the failure modes the four papers study:

- **Fine-grained classes** (CUB, Stanford Cars, FGVC-Aircraft, Stanford Dogs in
  miniature): per family one shared body in a random neutral colour and 12 classes
  that differ only in the colour of one small part (bird crest, car spoiler,
  aircraft tail fin, dog ears; 12 saturated hues). A classifier only needs the part,
  so its CAM locks onto it (the under-coverage of CAM).
- **Upright objects, half of them on oriented backgrounds**: landscapes with a
  sky-to-ground gradient, a wavy horizon and textured ground, or isotropic close-ups
  of the ground; clutter (trees, rocks, clouds, posts, decoy blobs, flowers) in the
  same neutral and part colours as the objects. A rotation classifier partly cheats
  on the landscapes (the smearing CAML fixes) but must look at the objects in the
  close-ups, and colour alone does not segment the object.
- **Context bias**: with probability ``context_bias`` the background style (ground
  colour, sky, texture, horizon height) is the one tied to the image's class;
  otherwise it is drawn uniformly from the same styles, so the marginal background
  distribution never changes, only its correlation with the class (InCA's
  over-coverage, ContraCAM's background bias).
- **Multi-object scenes** (1-3 non-overlapping objects of any of the chosen
  families) and the seven **Background Challenge** variants, built exactly from the
  generator's clean layers (see :data:`VARIANTS`).

Geometry lives in continuous image coordinates ``[0, 1]^2`` and shapes are implicit
functions (ellipses, super-ellipses, convex polygons as half-plane intersections)
evaluated on pixel-centre grids, so any image size works and drawing is vectorized
(:func:`benchmark` measures it). An object's longer side covers 20-70 % of the image
side, larger sizes more likely; objects face left or right at random.

Labels are ``index % num_classes`` (balanced; a class's images are easy to find);
the image depends on ``(seed, split, index)`` only, so a dataset with fewer samples
is a prefix of a longer one. Besides the :class:`~coloc.data.common.Sample` items,
:meth:`SyntheticDataset.render` gives the clean layers (:class:`Scene`: image,
object-free background, instance map, part mask), :meth:`SyntheticDataset.compose`
the variant's float image and :meth:`SyntheticDataset.raw_image` a uint8 image for
plotting.
"""

from __future__ import annotations

import colorsys
import math
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from coloc.data.common import IMAGENET_MEAN, IMAGENET_STD, Sample

FAMILIES = ("bird", "car", "aircraft", "dog")
VARIANTS = (
    "original",  # the generated scene
    "only_fg",  # objects on black
    "only_bg_b",  # object boxes blacked out
    "only_bg_t",  # objects removed: their region shows the generator's clean background
    "mixed_same",  # objects pasted on the clean background of another image, same class
    "mixed_rand",  # ... of a random other image
    "mixed_next",  # ... of an image of the next class ((label + 1) % num_classes)
)
SPLIT_SIZES = {"train": 2000, "val": 500, "test": 1000}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MIN_IMAGE_SIZE = 16
MAX_OBJECTS = 3
SCALE_RANGE = (0.2, 0.7)  # longer object side as a fraction of the image side
# The smallest object side in pixels at any image size: enough for every body to
# cover some pixel centres, so every object has a mask and a box.
MIN_OBJECT_PIXELS = 8
# Share of oriented landscapes; the rest are isotropic close-ups where only the
# objects tell which way is up (so a rotation classifier must look at them too).
LANDSCAPE_SHARE = 0.5
LANDSCAPE_CLUTTER = ("tree", "rock", "cloud", "post", "decoy", "flowers")
CLOSEUP_CLUTTER = ("rock", "decoy", "flowers")

# Twelve saturated hues, 30 degrees apart: the classes of a family (part colours).
PART_COLOR_NAMES = (
    "red", "orange", "yellow", "lime", "green", "spring",
    "cyan", "azure", "blue", "violet", "magenta", "rose",
)  # fmt: skip
PART_COLORS = {
    name: np.array(colorsys.hsv_to_rgb(k / 12, 0.85, 0.92), dtype=np.float32)
    for k, name in enumerate(PART_COLOR_NAMES)
}
# Bodies and most clutter share these colours, so colour alone does not find objects.
NEUTRAL_COLORS = np.array(
    [
        (0.46, 0.33, 0.21),  # brown
        (0.52, 0.52, 0.50),  # grey
        (0.45, 0.46, 0.26),  # olive
        (0.72, 0.62, 0.46),  # tan
        (0.30, 0.35, 0.40),  # slate
        (0.60, 0.36, 0.22),  # rust
        (0.80, 0.79, 0.74),  # light grey
        (0.22, 0.20, 0.18),  # dark brown
    ],
    dtype=np.float32,
)
SKY_COLORS = np.array(
    [  # (top, bottom)
        [(0.30, 0.50, 0.85), (0.72, 0.84, 0.96)],  # clear
        [(0.50, 0.55, 0.60), (0.80, 0.81, 0.84)],  # overcast
        [(0.33, 0.28, 0.52), (0.95, 0.70, 0.50)],  # dusk
        [(0.42, 0.68, 0.78), (0.90, 0.94, 0.84)],  # haze
    ],
    dtype=np.float32,
)
# Earth tones shared with bodies and clutter, plus grass, forest, water, snow, heather.
GROUND_COLORS = np.array(
    [
        (0.32, 0.48, 0.22),  # grass
        (0.62, 0.58, 0.32),  # dry grass
        (0.46, 0.33, 0.21),  # soil
        (0.74, 0.66, 0.48),  # sand
        (0.52, 0.52, 0.50),  # rock
        (0.30, 0.35, 0.40),  # slate
        (0.45, 0.46, 0.26),  # olive
        (0.60, 0.36, 0.22),  # rust
        (0.16, 0.28, 0.16),  # forest
        (0.20, 0.42, 0.45),  # water
        (0.85, 0.86, 0.88),  # snow
        (0.45, 0.32, 0.45),  # heather
    ],
    dtype=np.float32,
)
ROLES = ("body", "shade", "accent", "dark", "glass", "part")
PART_ROLE = ROLES.index("part") + 1  # role ids of object k are 6k+1..6k+6; 0 is background


# ----------------------------------------------------------------------------- shapes
# Shapes take u as a row [1, w] and v as a column [h, 1] and return a bool [h, w] mask,
# so each test is one broadcast operation on the pixels of the drawing window.


@dataclass(frozen=True)
class Ellipse:
    """Axis-aligned ellipse with centre ``(cu, cv)`` and radii ``(ru, rv)``."""

    cu: float
    cv: float
    ru: float
    rv: float
    rounded_rect: bool = False  # super-ellipse of power 4 instead of 2

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        du = (u - self.cu) * (1.0 / self.ru)
        dv = (v - self.cv) * (1.0 / self.rv)
        du *= du
        dv *= dv
        if self.rounded_rect:
            du *= du
            dv *= dv
        return du + dv <= 1.0

    def bounds(self) -> tuple[float, float, float, float]:
        return self.cu - self.ru, self.cu + self.ru, self.cv - self.rv, self.cv + self.rv


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle ``[u0, u1] x [v0, v1]``."""

    u0: float
    u1: float
    v0: float
    v1: float

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return ((u >= self.u0) & (u <= self.u1)) & ((v >= self.v0) & (v <= self.v1))

    def bounds(self) -> tuple[float, float, float, float]:
        return self.u0, self.u1, self.v0, self.v1


class Polygon:
    """Convex polygon as an intersection of half-planes ``a*u + b*v <= c``."""

    def __init__(self, *vertices: tuple[float, float]) -> None:
        points = np.array(vertices, dtype=np.float64)
        centroid = points.mean(axis=0)
        planes = []
        for p, q in zip(points, np.roll(points, -1, axis=0), strict=True):
            normal = np.array([q[1] - p[1], p[0] - q[0]])
            if normal @ (centroid - p) > 0:
                normal = -normal
            planes.append((normal[0], normal[1], normal @ p))
        # [E, 1, 1] each, so one broadcast evaluates every edge at once
        self.a, self.b, self.c = np.array(planes, dtype=np.float32).T[..., None, None]
        self.extent = (
            float(points[:, 0].min()),
            float(points[:, 0].max()),
            float(points[:, 1].min()),
            float(points[:, 1].max()),
        )

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        margins = (self.c - self.b * v) - self.a * u  # [E, h, w]
        return margins.min(axis=0) >= 0

    def bounds(self) -> tuple[float, float, float, float]:
        return self.extent


Shape = Ellipse | Rect | Polygon


@dataclass(frozen=True)
class Family:
    """A superclass: body layers drawn in order, then the part in the class colour.

    Coordinates are object units: the object faces +u (right), v points down.
    """

    name: str
    body: tuple[tuple[str, Shape], ...]
    part_name: str
    part: tuple[Shape, ...]

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(u0, u1, v0, v1)`` covering the body and the part."""
        b = np.array([s.bounds() for s in [s for _, s in self.body] + list(self.part)])
        return (
            float(b[:, 0].min()),
            float(b[:, 1].max()),
            float(b[:, 2].min()),
            float(b[:, 3].max()),
        )


FAMILY_SPECS = {
    "bird": Family(
        name="bird",
        body=(
            ("shade", Polygon((-0.2, -0.02), (-0.5, -0.16), (-0.5, 0.06))),  # tail
            ("dark", Rect(-0.07, -0.03, 0.15, 0.42)),  # legs
            ("dark", Rect(0.04, 0.08, 0.15, 0.42)),
            ("body", Ellipse(0.0, 0.05, 0.3, 0.19)),
            ("shade", Ellipse(-0.06, 0.03, 0.2, 0.1)),  # wing
            ("body", Ellipse(0.27, -0.15, 0.12, 0.12)),  # head
            ("accent", Polygon((0.35, -0.2), (0.54, -0.14), (0.35, -0.08))),  # beak
            ("dark", Ellipse(0.3, -0.17, 0.028, 0.028)),  # eye
        ),
        part_name="crest",
        part=(Ellipse(0.22, -0.3, 0.11, 0.085),),
    ),
    "car": Family(
        name="car",
        body=(
            ("body", Polygon((-0.3, -0.05), (-0.19, -0.25), (0.12, -0.25), (0.26, -0.05))),
            ("glass", Polygon((-0.24, -0.07), (-0.16, -0.21), (0.1, -0.21), (0.2, -0.07))),
            ("body", Rect(-0.05, -0.02, -0.22, -0.06)),  # pillar
            ("body", Ellipse(0.0, 0.05, 0.5, 0.13, rounded_rect=True)),  # hull
            ("shade", Rect(-0.45, 0.45, 0.08, 0.11)),  # sill line
            ("accent", Ellipse(0.46, 0.0, 0.035, 0.025)),  # headlight
            ("dark", Ellipse(-0.29, 0.17, 0.1, 0.1)),  # wheels
            ("dark", Ellipse(0.29, 0.17, 0.1, 0.1)),
            ("accent", Ellipse(-0.29, 0.17, 0.04, 0.04)),
            ("accent", Ellipse(0.29, 0.17, 0.04, 0.04)),
        ),
        part_name="spoiler",
        part=(Rect(-0.54, -0.28, -0.23, -0.13), Rect(-0.46, -0.41, -0.13, -0.06)),
    ),
    "aircraft": Family(
        name="aircraft",
        body=(
            ("shade", Polygon((0.1, 0.0), (-0.06, 0.0), (-0.22, 0.16), (-0.1, 0.16))),  # wing
            ("body", Ellipse(0.0, 0.0, 0.5, 0.08)),  # fuselage
            ("shade", Polygon((-0.34, 0.0), (-0.42, 0.0), (-0.5, 0.06), (-0.44, 0.06))),
            ("dark", Ellipse(0.02, 0.08, 0.1, 0.045)),  # engine
            ("glass", Ellipse(0.38, -0.03, 0.05, 0.022)),  # cockpit
            ("accent", Rect(-0.3, 0.28, -0.015, 0.01)),  # window band
        ),
        part_name="tail fin",
        part=(Polygon((-0.29, -0.05), (-0.42, -0.3), (-0.5, -0.3), (-0.48, -0.05)),),
    ),
    "dog": Family(
        name="dog",
        body=(
            ("body", Polygon((-0.24, -0.04), (-0.47, -0.27), (-0.42, -0.31), (-0.2, -0.12))),
            ("shade", Rect(-0.24, -0.17, 0.02, 0.38)),  # hind legs
            ("shade", Rect(-0.13, -0.06, 0.02, 0.38)),
            ("body", Rect(0.1, 0.17, 0.02, 0.38)),  # front legs
            ("body", Rect(0.2, 0.27, 0.02, 0.38)),
            ("body", Ellipse(0.0, 0.0, 0.31, 0.15)),
            ("body", Polygon((0.14, -0.05), (0.24, -0.23), (0.37, -0.17), (0.29, 0.03))),  # neck
            ("body", Ellipse(0.32, -0.2, 0.11, 0.1)),  # head
            ("accent", Ellipse(0.43, -0.16, 0.08, 0.05)),  # snout
            ("dark", Ellipse(0.5, -0.17, 0.022, 0.022)),  # nose
            ("dark", Ellipse(0.35, -0.23, 0.02, 0.02)),  # eye
        ),
        part_name="ears",
        part=(Polygon((0.2, -0.25), (0.25, -0.47), (0.37, -0.28)),),
    ),
}
FAMILY_EXTENTS = {name: spec.extent for name, spec in FAMILY_SPECS.items()}


@dataclass(frozen=True)
class ClassSpec:
    """One fine-grained class: a family and the colour of its part."""

    family: str
    color: str

    @property
    def name(self) -> str:
        return f"{self.family}/{self.color}-{FAMILY_SPECS[self.family].part_name}"


ALL_CLASSES = tuple(ClassSpec(family, color) for family in FAMILIES for color in PART_COLORS)
CLASSES_PER_FAMILY = len(ALL_CLASSES) // len(FAMILIES)


@dataclass(frozen=True)
class BackgroundStyle:
    """What context bias ties to a class: sky, ground colours, texture, horizon."""

    sky_top: np.ndarray
    sky_bottom: np.ndarray
    ground_top: np.ndarray
    ground_bottom: np.ndarray
    horizon: float
    stripes: bool  # furrows instead of blotchy noise on the ground


def _make_style(global_class: int) -> BackgroundStyle:
    """The background style of a class (index into :data:`ALL_CLASSES`), fixed forever.

    The 12 classes of a family get 12 different ground colours (and varied sky,
    texture and horizon), so with context bias the background alone names the class.
    """
    family, rank = divmod(global_class, CLASSES_PER_FAMILY)
    ground = GROUND_COLORS[(5 * rank + family) % len(GROUND_COLORS)]
    sky = SKY_COLORS[(rank + family) % len(SKY_COLORS)]
    return BackgroundStyle(
        sky_top=sky[0],
        sky_bottom=sky[1],
        ground_top=ground,
        ground_bottom=ground * 0.6,
        horizon=0.42 + 0.1 * ((rank + family) % 3),
        stripes=(rank // len(SKY_COLORS) + family) % 2 == 1,
    )


STYLES = tuple(_make_style(g) for g in range(len(ALL_CLASSES)))


@dataclass
class Scene:
    """The clean layers of one generated image (float images in [0, 1], ``[H, W, 3]``).

    ``instances`` numbers objects 1..K in the order of ``labels``/``boxes``
    (object 1 carries the image label); 0 is background. ``style`` is the dataset
    class whose background style was drawn (equal to ``labels[0]`` when context bias
    tied it, or by chance).
    """

    image: np.ndarray
    background: np.ndarray
    instances: np.ndarray
    part: np.ndarray
    labels: tuple[int, ...]
    boxes: np.ndarray
    style: int

    @property
    def mask(self) -> np.ndarray:
        """Union foreground mask, bool ``[H, W]``."""
        return self.instances > 0


# ----------------------------------------------------------------------------- raster


class _Random:
    """The random stream of one ``(seed, split, index, stream)``: a Philox generator
    keyed by those numbers (independent streams without SeedSequence hashing), with
    scalar draws served from a pre-drawn buffer (a render makes ~80 of them, and
    numpy's per-call overhead would dominate).
    """

    def __init__(self, seed: int, split_id: int, index: int, stream: int) -> None:
        key = (seed << 64) | (split_id << 62) | (stream << 60) | index
        self.generator = np.random.Generator(np.random.Philox(key=key))
        self._buffer: list[float] = []

    def random(self) -> float:
        if not self._buffer:
            self._buffer = self.generator.random(64).tolist()
        return self._buffer.pop()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def integers(self, low: int, high: int | None = None) -> int:
        """Like ``Generator.integers``: ``[0, low)`` or ``[low, high)``."""
        if high is None:
            low, high = 0, low
        return low + int(self.random() * (high - low))

    def array(self, *shape: int) -> np.ndarray:
        """Uniform float32 ``[0, 1)`` of the given shape."""
        return self.generator.random(shape, dtype=np.float32)


@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in [0, 1]: x as a row ``[1, S]``, y as a column ``[S, 1]``."""
    centres = (np.arange(size, dtype=np.float32) + 0.5) / np.float32(size)
    return centres[None, :], centres[:, None]


@lru_cache(maxsize=8)
def _grain_bank(size: int) -> np.ndarray:
    """A fixed field of pixel noise ``[2S, 2S, 3]``; each image crops it at random."""
    rng = np.random.default_rng(20211011)
    return rng.normal(0.0, 0.025, size=(2 * size, 2 * size, 3)).astype(np.float32)


def _window(bounds: tuple[float, float, float, float], size: int) -> tuple[slice, slice]:
    """Rows and columns whose pixel centres may fall inside continuous ``bounds``."""
    x0, x1, y0, y1 = bounds
    cols = slice(max(0, math.floor(x0 * size - 0.5)), min(size, math.ceil(x1 * size + 0.5)))
    rows = slice(max(0, math.floor(y0 * size - 0.5)), min(size, math.ceil(y1 * size + 0.5)))
    return rows, cols


def _smooth_noise(rng: _Random, cells: int, size: int) -> np.ndarray:
    """Value noise in [-1, 1]: a random ``cells x cells`` grid resized to ``[S, S]``."""
    coarse = rng.array(cells, cells) * 2.0 - 1.0
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _jitter(rng: _Random, color: np.ndarray, amount: float) -> np.ndarray:
    """``color`` plus uniform noise in ``[-amount, amount]`` (the image is clipped later)."""
    return color + (rng.array(3) - np.float32(0.5)) * np.float32(2 * amount)


@dataclass(frozen=True)
class _Placement:
    """Where an object goes: centre, scale (image units per object unit), mirroring."""

    cx: float
    cy: float
    scale: float
    mirror: int  # +1 faces right, -1 faces left

    def box(self, family: str) -> tuple[float, float, float, float]:
        u0, u1, v0, v1 = FAMILY_EXTENTS[family]
        if self.mirror < 0:
            u0, u1 = -u1, -u0
        s = self.scale
        return self.cx + s * u0, self.cx + s * u1, self.cy + s * v0, self.cy + s * v1


def _tight_box(instances: np.ndarray, instance_id: int, rows: slice, cols: slice) -> list[int]:
    """Inclusive ``(x0, y0, x1, y1)`` of one object's pixels, searched in its window."""
    inside = instances[rows, cols] == instance_id
    ys, xs = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    return [cols.start + xs[0], rows.start + ys[0], cols.start + xs[-1], rows.start + ys[-1]]


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], gap: float = 0.02) -> bool:
    return a[0] < b[1] + gap and b[0] < a[1] + gap and a[2] < b[3] + gap and b[2] < a[3] + gap


# ----------------------------------------------------------------------------- dataset


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


class SyntheticDataset(Dataset):
    """Seeded procedural scenes returning the :class:`~coloc.data.common.Sample` contract.

    ``split`` picks the seed stream (train/val/test, default sizes in
    :data:`SPLIT_SIZES`; every split carries boxes and masks, val plays the
    train-fullsup role). ``families`` chooses the superclasses, whose classes are
    concatenated in that order. ``context_bias`` in [0, 1] ties the background style
    to the class with that probability. ``num_objects`` is a count or an inclusive
    ``(low, high)`` range within 1-3. ``variant`` is one of :data:`VARIANTS`.
    ``augment`` adds a random horizontal flip (torch RNG) on top of the generator's
    own seeded mirroring.
    """

    def __init__(
        self,
        split: str = "train",
        image_size: int = 64,
        *,
        families: Sequence[str] = ("bird",),
        num_samples: int | None = None,
        seed: int = 0,
        context_bias: float = 0.0,
        num_objects: int | tuple[int, int] = 1,
        variant: str = "original",
        augment: bool = False,
    ) -> None:
        _check_choice("split", split, tuple(SPLIT_SIZES))
        _check_choice("variant", variant, VARIANTS)
        if isinstance(families, str):
            families = (families,)
        if not families:
            raise ValueError(f"families is empty; allowed: {', '.join(FAMILIES)}")
        for family in families:
            _check_choice("family", family, FAMILIES)
        if len(set(families)) != len(families):
            raise ValueError(f"families has duplicates: {tuple(families)}")
        if not 0.0 <= context_bias <= 1.0:
            raise ValueError(f"context_bias must lie in [0, 1], got {context_bias}")
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
        if isinstance(num_objects, Integral):
            num_objects = (num_objects, num_objects)
        low, high = num_objects
        if not 1 <= low <= high <= MAX_OBJECTS:
            raise ValueError(
                f"num_objects must be a count or a (low, high) range within 1-{MAX_OBJECTS}, "
                f"got {num_objects}"
            )
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
        num_samples = SPLIT_SIZES[split] if num_samples is None else num_samples
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")

        self.split = split
        self.image_size = int(image_size)
        self.families = tuple(families)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.context_bias = float(context_bias)
        self.num_objects = (low, high)
        self.variant = variant
        self.augment = augment
        self._class_ids = [
            g for family in self.families for g, c in enumerate(ALL_CLASSES) if c.family == family
        ]
        self.class_specs = [ALL_CLASSES[g] for g in self._class_ids]
        self.classes = [c.name for c in self.class_specs]
        self.num_classes = len(self.classes)
        min_scale = max(SCALE_RANGE[0], MIN_OBJECT_PIXELS / self.image_size)
        self._scale_range = (min_scale, max(min_scale, SCALE_RANGE[1]))
        self._mean = np.array(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
        self._inv_std = 1.0 / np.array(IMAGENET_STD, dtype=np.float32)[:, None, None]

    def __len__(self) -> int:
        return self.num_samples

    def label(self, index: int) -> int:
        """The class of image ``index`` (any index of the split's stream, not only < len)."""
        return index % self.num_classes

    # ------------------------------------------------------------------ generation

    def _rng(self, index: int, stream: int = 0) -> _Random:
        return _Random(self.seed, SPLIT_IDS[self.split], index, stream)

    def render(self, index: int) -> Scene:
        """Generate the clean layers of image ``index`` (deterministic, no variant).

        Any index of the split's endless stream works, also past ``len(self)``.
        """
        index = operator.index(index)
        if index < 0:
            raise IndexError(f"index must be >= 0, got {index}")
        rng = self._rng(index)
        size = self.image_size
        label = self.label(index)
        style = label if rng.random() < self.context_bias else rng.integers(self.num_classes)
        noise = _smooth_noise(rng, 8, size)  # ground blotches and object shading
        background = self._draw_background(rng, STYLES[self._class_ids[style]], noise)

        count = rng.integers(self.num_objects[0], self.num_objects[1] + 1)
        labels = [label] + [rng.integers(self.num_classes) for _ in range(count - 1)]
        placements = self._place_objects(rng, [self.class_specs[c].family for c in labels])
        labels = labels[: len(placements)]

        roles = np.zeros((size, size), np.uint8)  # object k (0-based) paints 6k+1..6k+6
        palette = [np.zeros(3, np.float32)]
        windows = []
        for cls, placement in zip(labels, placements, strict=True):
            spec = self.class_specs[cls]
            windows.append(self._draw_object(spec, placement, roles, len(palette) - 1))
            palette.extend(self._object_colors(rng, spec))
        instances = (roles + np.uint8(len(ROLES) - 1)) // np.uint8(len(ROLES))

        grain = self._grain(rng)
        background += grain
        np.clip(background, 0.0, 1.0, out=background)
        # Composite only inside the union of the object windows (np.take: fast gather).
        rows = slice(min(r.start for r, _ in windows), max(r.stop for r, _ in windows))
        cols = slice(min(c.start for _, c in windows), max(c.stop for _, c in windows))
        window_roles = roles[rows, cols]
        objects = np.take(np.stack(palette), window_roles, axis=0)
        objects *= (1.0 + 0.08 * noise[rows, cols])[..., None]
        objects += grain[rows, cols]
        np.clip(objects, 0.0, 1.0, out=objects)
        image = background.copy()
        inside = np.repeat((window_roles > 0)[..., None], 3, axis=2)
        image[rows, cols] = np.where(inside, objects, image[rows, cols])

        is_part = np.zeros(len(palette), bool)
        is_part[PART_ROLE :: len(ROLES)] = True
        part = np.take(is_part, roles)
        boxes = [_tight_box(instances, k + 1, *windows[k]) for k in range(len(labels))]
        boxes = np.array(boxes, np.float32)
        return Scene(image, background, instances, part, tuple(labels), boxes, style)

    def _grain(self, rng: _Random) -> np.ndarray:
        size = self.image_size
        dy, dx = rng.integers(size), rng.integers(size)
        return _grain_bank(size)[dy : dy + size, dx : dx + size]

    def _draw_background(
        self, rng: _Random, style: BackgroundStyle, noise: np.ndarray
    ) -> np.ndarray:
        """The clean background ``[S, S, 3]``: an oriented landscape (sky-to-ground
        gradient, wavy horizon, textured ground) with probability
        :data:`LANDSCAPE_SHARE`, else an isotropic close-up of the ground; then clutter.
        """
        x, y = _pixel_grid(self.image_size)
        ground_top = _jitter(rng, style.ground_top, 0.05)
        if rng.random() >= LANDSCAPE_SHARE:
            background = ground_top * (1.0 + 0.2 * noise)[..., None]
            self._draw_clutter(rng, background, ground_top, horizon=None)
            return background

        horizon = style.horizon + rng.uniform(-0.08, 0.08)
        wave_phase = 2 * np.pi * (rng.uniform(0.5, 2.0) * x + rng.random())
        ground = y > horizon + rng.uniform(0.0, 0.05) * np.sin(wave_phase)  # bool [S, S]
        sky_top = _jitter(rng, style.sky_top, 0.05)
        sky_bottom = _jitter(rng, style.sky_bottom, 0.05)
        ground_bottom = _jitter(rng, style.ground_bottom, 0.05)
        t_sky = np.minimum(y / horizon, 1.0)[..., None]  # [S, 1, 1]
        t_ground = np.maximum((y - horizon) / (1.0 - horizon), 0.0)[..., None]
        sky_rows = sky_top + (sky_bottom - sky_top) * t_sky  # [S, 1, 3]
        ground_rows = ground_top + (ground_bottom - ground_top) * t_ground
        background = ground[..., None] * (ground_rows - sky_rows)  # no broadcast np.where:
        background += sky_rows  # it is 4x slower at this size
        if style.stripes:  # furrows
            phase = 2 * np.pi * (rng.uniform(6, 12) * y + rng.uniform(-2, 2) * x)
            texture = np.sin(phase) * 0.14
        else:
            texture = noise * 0.16
        texture *= ground
        texture += 1.0
        background *= texture[..., None]
        self._draw_clutter(rng, background, ground_top, horizon)
        return background

    def _draw_clutter(
        self, rng: _Random, canvas: np.ndarray, ground: np.ndarray, horizon: float | None
    ) -> None:
        """Paint 2-5 distractors in object colours: trees, rocks, clouds, posts, decoy
        blobs and part-coloured flowers; a close-up (``horizon`` None) gets only rocks,
        decoys and flowers, elongated either way, so it carries no orientation cue.
        """
        size = self.image_size
        x, y = _pixel_grid(size)
        kinds = CLOSEUP_CLUTTER if horizon is None else LANDSCAPE_CLUTTER
        ground_top = 0.0 if horizon is None else horizon
        shapes: list[tuple[Shape, np.ndarray]] = []
        for _ in range(rng.integers(2, 6)):
            kind = kinds[rng.integers(len(kinds))]
            neutral = _jitter(rng, NEUTRAL_COLORS[rng.integers(len(NEUTRAL_COLORS))], 0.06)
            cx, radius = rng.uniform(0.0, 1.0), rng.uniform(0.05, 0.2)
            flat = radius * rng.uniform(0.4, 0.8)
            if horizon is None and rng.random() < 0.5:
                radius, flat = flat, radius
            if kind == "tree":  # trunk from the ground up, canopy on top
                base = rng.uniform(ground_top, 1.0)
                top = base - rng.uniform(0.25, 0.6)
                shapes.append((Rect(cx - 0.02, cx + 0.02, top, base), neutral))
                canopy = _jitter(rng, ground * 0.75, 0.1)
                shapes.append((Ellipse(cx, top, radius, radius * 0.8), canopy))
            elif kind == "rock":
                shapes.append((Ellipse(cx, rng.uniform(ground_top, 1.0), radius, flat), neutral))
            elif kind == "cloud":
                cloud = _jitter(rng, np.full(3, 0.9, np.float32), 0.08)
                cy = rng.uniform(0.0, ground_top)
                shapes.append((Ellipse(cx, cy, radius * 1.5, radius * 0.4), cloud))
            elif kind == "post":
                base = rng.uniform(ground_top, 1.0)
                top = base - rng.uniform(0.15, 0.4)
                shapes.append((Rect(cx - 0.012, cx + 0.012, top, base), neutral))
            elif kind == "decoy":  # an object-coloured blob without head or part
                shapes.append((Ellipse(cx, rng.uniform(0.1, 0.9), radius, flat), neutral))
            else:  # flowers in part colours on the ground
                color = PART_COLORS[PART_COLOR_NAMES[rng.integers(len(PART_COLORS))]]
                for _ in range(rng.integers(1, 4)):
                    fx, fy = cx + rng.uniform(-0.08, 0.08), rng.uniform(ground_top, 1.0)
                    shapes.append((Ellipse(fx, fy, 0.022, 0.022), _jitter(rng, color, 0.05)))
        for shape, color in shapes:
            rows, cols = _window(shape.bounds(), size)
            if rows.start >= rows.stop or cols.start >= cols.stop:
                continue
            inside = shape.inside(x[:, cols], y[rows])
            canvas[rows, cols][inside] = color

    def _place_objects(self, rng: _Random, families: list[str]) -> list[_Placement]:
        """Random scale, position and mirroring for each object, never overlapping.

        The longer side is drawn from ``SCALE_RANGE`` with a density rising linearly
        toward large objects (benchmark objects usually fill much of the photo); with
        several objects the range shrinks, and an object that finds no free spot in
        60 tries (a rare, crowded scene) is left out.
        """
        low, high = self._scale_range
        if len(families) > 1:  # room for several objects
            high = max(low, high / math.sqrt(len(families)))
        placements: list[_Placement] = []
        boxes: list[tuple[float, float, float, float]] = []
        for family in families:
            u0, u1, v0, v1 = FAMILY_EXTENTS[family]
            width, height = u1 - u0, v1 - v0
            for attempt in range(60):
                side = (low + (high - low) * math.sqrt(rng.random())) * 0.85 ** (attempt // 15)
                side = max(side, low)
                scale = side / max(width, height)
                mirror = 1 if rng.random() < 0.5 else -1
                left = rng.uniform(0.0, 1.0 - scale * width)
                top = rng.uniform(0.0, 1.0 - scale * height)
                cx = left - scale * u0 if mirror > 0 else left + scale * u1
                placement = _Placement(cx, top - scale * v0, scale, mirror)
                box = placement.box(family)
                if not any(_overlaps(box, other) for other in boxes):
                    placements.append(placement)
                    boxes.append(box)
                    break
        return placements

    def _draw_object(
        self,
        spec: ClassSpec,
        placement: _Placement,
        roles: np.ndarray,
        role_offset: int,
    ) -> tuple[slice, slice]:
        """Rasterize one object into the role map; return its window."""
        family = FAMILY_SPECS[spec.family]
        rows, cols = _window(placement.box(spec.family), self.image_size)
        x, y = _pixel_grid(self.image_size)
        u = (x[:, cols] - placement.cx) * (placement.mirror / placement.scale)
        v = (y[rows] - placement.cy) / placement.scale
        role_window = roles[rows, cols]
        layers = [(ROLES.index(r) + 1, s) for r, s in family.body]
        layers += [(PART_ROLE, s) for s in family.part]
        for role, shape in layers:
            inside = shape.inside(u, v)
            role_window[inside] = role_offset + role
        return rows, cols

    def _object_colors(self, rng: _Random, spec: ClassSpec) -> list[np.ndarray]:
        """Colours for the roles of one object: random neutral body, class part colour."""
        body = _jitter(rng, NEUTRAL_COLORS[rng.integers(len(NEUTRAL_COLORS))], 0.06)
        return [
            body,
            body * 0.65,
            body * 0.5 + 0.45,
            _jitter(rng, np.full(3, 0.12, np.float32), 0.04),
            _jitter(rng, np.array([0.55, 0.66, 0.78], np.float32), 0.05),
            _jitter(rng, PART_COLORS[spec.color], 0.04),
        ]

    # ------------------------------------------------------------------ variants

    def background_source(self, index: int) -> int | None:
        """Index whose clean background a mixed variant uses for image ``index``.

        Drawn among roughly the first ``max(len(self), 2 * num_classes)`` indices of the
        split's stream (a source may lie just past ``len(self)``, and tiny datasets
        still have candidates); None for the unmixed variants.
        """
        if not self.variant.startswith("mixed_"):
            return None
        # mixed_rand has its own stream, so its source is independent of mixed_same's
        rng = self._rng(index, stream=2 if self.variant == "mixed_rand" else 1)
        pool = max(self.num_samples, 2 * self.num_classes)
        if self.variant == "mixed_rand":
            source = rng.integers(pool - 1)
            return source + 1 if source >= index else source
        target = self.label(index)
        if self.variant == "mixed_next":
            target = (target + 1) % self.num_classes
        per_class = max(2, math.ceil(pool / self.num_classes))
        k = rng.integers(per_class)
        source = target + k * self.num_classes
        if source == index:  # mixed_same: never its own background
            source = target + ((k + 1) % per_class) * self.num_classes
        return source

    def compose(self, index: int) -> tuple[np.ndarray, Scene]:
        """The variant's float image ``[H, W, 3]`` in [0, 1] and the scene it came from."""
        scene = self.render(index)
        mask = scene.mask[..., None]
        if self.variant == "original":
            image = scene.image
        elif self.variant == "only_fg":
            image = np.where(mask, scene.image, np.float32(0.0))
        elif self.variant == "only_bg_b":
            image = scene.image.copy()
            for x0, y0, x1, y1 in scene.boxes.astype(int):
                image[y0 : y1 + 1, x0 : x1 + 1] = 0.0
        elif self.variant == "only_bg_t":
            image = scene.background
        else:
            other = self.render(self.background_source(index))
            image = np.where(mask, scene.image, other.background)
        return image, scene

    def raw_image(self, index: int) -> np.ndarray:
        """The variant's image as uint8 ``[H, W, 3]`` for plotting (no augmentation)."""
        image, _ = self.compose(index)
        return (image * 255.0 + 0.5).astype(np.uint8)

    def __getitem__(self, index: int) -> Sample:
        index = operator.index(index)
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        image, scene = self.compose(index)
        mask, part, boxes = scene.mask, scene.part, scene.boxes
        if self.augment and bool(torch.rand(()) < 0.5):
            image, mask, part = image[:, ::-1], mask[:, ::-1], part[:, ::-1]
            boxes = boxes.copy()
            boxes[:, [0, 2]] = self.image_size - 1 - boxes[:, [2, 0]]
        normalized = np.subtract(image.transpose(2, 0, 1), self._mean, order="C")
        normalized *= self._inv_std
        return Sample(
            image=torch.from_numpy(normalized),
            label=scene.labels[0],
            family=self.class_specs[scene.labels[0]].family,
            boxes=torch.from_numpy(boxes),
            mask=torch.from_numpy(mask.astype(np.uint8)),
            part_mask=torch.from_numpy(np.ascontiguousarray(part)),
            index=index,
        )


def benchmark(n: int = 2000, image_size: int = 64, rounds: int = 5) -> dict[str, float]:
    """Images per second on one thread: full samples, rendering only, and a JPEG decode.

    Each figure is the best of ``rounds`` timed rounds of ``n / rounds`` images (as
    ``timeit`` advises: slower rounds measure other processes, not this code). The
    JPEG line is what a real dataset pays per image once the file is in memory
    (decode + normalize at the same size), for scale.
    """
    dataset = SyntheticDataset("train", image_size, num_samples=n)
    _, encoded = cv2.imencode(".jpg", dataset.raw_image(0)[..., ::-1])
    mean = np.array(IMAGENET_MEAN, dtype=np.float32)
    inv_std = 1.0 / np.array(IMAGENET_STD, dtype=np.float32)

    def decode_jpeg(_: int) -> torch.Tensor:
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
        return torch.from_numpy(
            ((decoded / np.float32(255.0) - mean) * inv_std).transpose(2, 0, 1).copy()
        )

    def images_per_s(load: Callable[[int], object]) -> float:
        chunk = max(1, n // rounds)
        best = math.inf
        for first in range(0, chunk * rounds, chunk):
            start = time.perf_counter()
            for index in range(first, first + chunk):
                load(index)
            best = min(best, time.perf_counter() - start)
        return chunk / best

    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        return {
            "image_size": image_size,
            "samples_per_s": images_per_s(dataset.__getitem__),
            "render_per_s": images_per_s(dataset.render),
            "jpeg_decode_per_s": images_per_s(decode_jpeg),
        }
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
