"""What every real dataset shares: its description, the file readers, the base class.

- :class:`DatasetInfo`: where a dataset is published and its exact layout under
  ``data_root``; it feeds ``coloc.data.DATASETS``, ``coloc.data.check`` and every error
  message.
- One reader per file kind, each turning a problem into a
  :class:`~coloc.data.errors.DatasetError` that names the file (and line):
  :func:`read_table` (text annotations, one record per line), :func:`read_image`,
  :func:`read_mat`, :func:`read_xml`, :func:`read_json`.
- :class:`RealDataset`: reads one image and its annotations at the original resolution,
  applies the protocol transform (:mod:`coloc.data.transforms`), ImageNet-normalizes and
  returns the :class:`~coloc.data.common.Sample` dict. Subclasses only list their records
  and say how to read a record's boxes and mask.

Boxes are read in original-image pixels as inclusive corners, then clipped to the image,
before the transform.

Annotation policy: a bad annotation (a malformed line, a duplicate id, a class id beyond
the dataset's class count, a NaN, infinite or inverted box, a box entirely outside its
image, a split without images) raises :class:`DatasetFormatError` naming the file, the
line and the reason. With ``strict=False`` (``coloc.data.load(..., strict=False)``) such
records are skipped instead, each kept in ``dataset.skipped`` and counted in one warning
(a box outside its image, found only when the image is read, is dropped and warned
about). An image whose every box is invalid never reaches training: that stays an error.
"""

from __future__ import annotations

import json
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from coloc.data.common import IGNORE, Sample, normalize_image
from coloc.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from coloc.data.transforms import Annotated, ProtocolTransform, clip_boxes

Column = tuple[str, Callable[[str], Any]]
OnError = Callable[[DatasetFormatError], None]


@dataclass(frozen=True)
class DatasetInfo:
    """A real dataset as the book presents it: what it is, where to get it, its layout.

    ``layouts`` lists alternative sets of required paths relative to ``data_root/subdir``
    (a trailing ``/`` marks a directory); the dataset is present when one set is complete.
    ``tree`` is the same layout drawn for people, with optional parts marked.
    ``num_classes`` is the official class count (the classifier's output size).
    """

    name: str
    title: str
    description: str
    url: str
    subdir: str
    num_classes: int
    splits: tuple[str, ...]
    layouts: tuple[tuple[str, ...], ...]
    tree: str

    def missing(self, data_root: str | Path) -> list[str]:
        """Required paths absent under ``data_root`` (empty when the dataset is present).

        With alternative layouts, the one closest to complete is reported.
        """
        base = Path(data_root) / self.subdir
        reports = []
        for layout in self.layouts:
            absent = [
                str(base / rel) + ("/" if rel.endswith("/") else "")
                for rel in layout
                if not ((base / rel).is_dir() if rel.endswith("/") else (base / rel).is_file())
            ]
            if not absent:
                return []
            reports.append(absent)
        return min(reports, key=len)

    def error(self, kind: type[DatasetError], problem: str, **where: Any) -> DatasetError:
        """Build a ``kind`` error whose message carries this dataset's layout and URL."""
        return kind(problem, dataset=self.title, layout=self.tree, url=self.url, **where)


@dataclass(frozen=True)
class Record:
    """One image of a real dataset: its file, its class and where its annotations are.

    ``boxes`` are original-image inclusive corners known at indexing time; ``source``
    holds whatever a dataset needs to read the rest lazily (an XML path, mask paths, ...);
    ``where`` is the annotation file and line the record's boxes come from (for errors).
    """

    image: Path
    label: int
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    source: Any = field(default=None, compare=False)
    where: tuple[Path, int | None] | None = field(default=None, compare=False)


def require(path: Path, info: DatasetInfo, what: str) -> Path:
    """Return ``path`` if it exists (a directory when ``what`` ends with "directory")."""
    exists = path.is_dir() if what.endswith("directory") else path.is_file()
    if not exists:
        raise info.error(DatasetNotFoundError, f"{info.title}: {what} not found", path=path)
    return path


def read_table(
    path: Path, info: DatasetInfo, columns: Sequence[Column], *, sep: str | None = None,
    on_error: OnError | None = None,
) -> list[tuple[int, tuple]]:
    """Read a text annotation file: one record per line, fields split on ``sep``
    (whitespace by default; the last column takes the rest of the line), blank lines
    skipped. Returns ``(line number, converted fields)`` pairs; a line with the wrong
    number of fields or an unconvertible field raises :class:`DatasetFormatError` naming
    the file, the line and the expected columns (or, with ``on_error``, is passed to it
    and skipped). A file without any record is an error too."""
    require(path, info, "annotation file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise info.error(DatasetFormatError, f"not a UTF-8 text file ({exc})", path=path) from exc
    expected = " ".join(f"<{name}>" for name, _ in columns)
    if sep is not None:
        expected = expected.replace(" ", sep)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            rows.append((number, _convert_line(stripped, columns, sep, expected)))
        except ValueError as exc:
            error = info.error(DatasetFormatError, f"malformed line: {exc}", path=path,
                               line=number, content=line)
            if on_error is None:
                raise error from exc
            on_error(error)
    if not rows and not any(line.strip() for line in text.splitlines()):
        raise info.error(DatasetFormatError, f"empty annotation file: no line {expected}",
                         path=path)
    return rows


def _convert_line(line: str, columns: Sequence[Column], sep: str | None, expected: str
                  ) -> tuple:
    fields = line.split(sep, len(columns) - 1)
    if len(fields) != len(columns):
        raise ValueError(f"expected {len(columns)} fields {expected}, got {len(fields)}")
    values = []
    for (name, convert), raw in zip(columns, fields, strict=True):
        try:
            values.append(convert(raw.strip()))
        except ValueError as exc:
            raise ValueError(f"field <{name}> = {raw!r} is invalid ({exc}); expected "
                             f"{expected}") from exc
    return tuple(values)


def finite(text: str | float) -> float:
    """A finite float (``nan`` and ``inf`` parse as floats but are no coordinate)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text!r}")
    return value


def flag(text: str) -> int:
    """A 0/1 flag (e.g. CUB's ``is_training_image``); any other value is an error."""
    if text not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {text!r}")
    return int(text)


def box_problem(box: Sequence[float], size: tuple[int, int] | None = None) -> str | None:
    """Why ``box`` ``(x0, y0, x1, y1)`` (inclusive original-image pixels) is no box, or
    None: a NaN or infinite coordinate, ``x1 < x0`` or ``y1 < y0``, or with ``size``
    ``(H, W)`` no pixel inside the image (clipping would silently drop it)."""
    if not all(math.isfinite(v) for v in box):
        return f"box {tuple(box)} has a NaN or infinite coordinate"
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        return f"box {tuple(box)} is inverted (x1 < x0 or y1 < y0; expected x0 y0 x1 y1)"
    if size is not None and (x0 > size[1] - 1 or y0 > size[0] - 1 or x1 < 0 or y1 < 0):
        return f"box {tuple(box)} lies entirely outside the {size[1]}x{size[0]} (W x H) image"
    return None


def one_based(text: str | int | float) -> int:
    """A 1-based index (as written by MATLAB-era annotation files) to a 0-based int."""
    value = float(text)
    if value != int(value) or value < 1:
        raise ValueError(f"expected a 1-based integer index, got {text!r}")
    return int(value) - 1


def one_based_pixel(text: str | int | float) -> float:
    """A 1-based pixel coordinate (top-left pixel = 1) to a 0-based float one."""
    return finite(text) - 1.0


def mat_rows(vectors: dict[str, np.ndarray], columns: Sequence[Column], path: Path,
             info: DatasetInfo) -> list[tuple]:
    """Zip equally long ``.mat`` vectors (or struct fields) into converted rows; a bad
    element raises :class:`DatasetFormatError` naming the file, variable and element."""
    lengths = {name: len(vectors[name]) for name, _ in columns}
    if len(set(lengths.values())) > 1:
        raise info.error(
            DatasetFormatError, f".mat variables differ in length: {lengths}", path=path
        )
    rows = []
    for i in range(next(iter(lengths.values()), 0)):
        values = []
        for name, convert in columns:
            try:
                values.append(convert(vectors[name][i]))
            except (ValueError, TypeError) as exc:
                raise info.error(
                    DatasetFormatError,
                    f"element {i + 1} (1-based) of {name!r} = {vectors[name][i]!r} is invalid "
                    f"({exc})",
                    path=path,
                ) from exc
        rows.append(tuple(values))
    return rows


def read_image(path: Path, info: DatasetInfo, mode: str = "RGB") -> np.ndarray:
    """Decode an image file to a uint8 array (``[H, W, 3]`` for RGB, ``[H, W]`` for L)."""
    require(path, info, "image file")
    try:
        with Image.open(path) as image:
            return np.array(image.convert(mode))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise info.error(
            DatasetFormatError, f"cannot decode image ({exc})", path=path
        ) from exc


def read_mask_image(path: Path, info: DatasetInfo, shape: tuple[int, int], mode: str) -> np.ndarray:
    """Decode a mask image and check it has the ``(H, W)`` of the image it annotates."""
    mask = read_image(path, info, mode)
    if mask.shape[:2] != shape:
        raise info.error(
            DatasetFormatError,
            f"mask size {mask.shape[1]}x{mask.shape[0]} differs from its image's "
            f"{shape[1]}x{shape[0]} (W x H)",
            path=path,
        )
    return mask


def read_mat(path: Path, info: DatasetInfo, keys: Sequence[str]) -> dict[str, Any]:
    """Load a MATLAB ``.mat`` file (squeezed) and check it holds the variables ``keys``."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    require(path, info, "annotation file")
    try:
        mat = loadmat(path, squeeze_me=True)
    except (MatReadError, ValueError, OSError, TypeError) as exc:
        raise info.error(DatasetFormatError, f"cannot read .mat file ({exc})", path=path) from exc
    absent = [key for key in keys if key not in mat]
    if absent:
        raise info.error(
            DatasetFormatError,
            f".mat file lacks the variables {absent} (expected {list(keys)})", path=path,
        )
    return mat


def mat_vector(mat: dict[str, Any], key: str) -> np.ndarray:
    """The variable ``mat[key]`` (a vector or cell array, any orientation) as a 1-D array."""
    return np.atleast_1d(mat[key]).ravel()


def mat_struct(mat: dict[str, Any], key: str, fields: Sequence[str], path: Path,
               info: DatasetInfo) -> dict[str, np.ndarray]:
    """The fields of the struct array ``mat[key]``, each as a 1-D array (one per element)."""
    array = np.atleast_1d(mat[key])
    names = array.dtype.names or ()
    absent = [name for name in fields if name not in names]
    if absent:
        raise info.error(
            DatasetFormatError,
            f"struct {key!r} lacks the fields {absent} (has {list(names)})", path=path,
        )
    return {name: np.atleast_1d(array[name]).ravel() for name in fields}


def read_xml(path: Path, info: DatasetInfo) -> ET.Element:
    """Parse an XML annotation file (e.g. PASCAL-VOC style) and return its root element."""
    require(path, info, "annotation file")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise info.error(
            DatasetFormatError, f"malformed XML ({exc})", path=path, line=exc.position[0]
        ) from exc


def read_json(path: Path, info: DatasetInfo, keys: Sequence[str]) -> dict[str, Any]:
    """Load a JSON object and check it has the top-level ``keys``."""
    require(path, info, "annotation file")
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise info.error(
            DatasetFormatError, f"malformed JSON ({exc.msg})", path=path, line=exc.lineno
        ) from exc
    absent = [key for key in keys if not isinstance(data, dict) or key not in data]
    if absent:
        raise info.error(
            DatasetFormatError, f"JSON lacks the top-level keys {absent}", path=path
        )
    return data


def mask_box(mask: np.ndarray) -> np.ndarray:
    """The tight inclusive box ``[1, 4]`` of the pixels equal to 1 (``[0, 4]`` if none)."""
    ys, xs = np.nonzero(mask == 1)
    if xs.size == 0:
        return np.zeros((0, 4), np.float32)
    return np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], np.float32)


def xywh_to_corners(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    """``x y w h`` to ``(x, y, x + w, y + h)``: the convention wsolevaluation's CUB metadata
    uses for CUB's bounding_boxes.txt (image 1: ``60 27 325 304`` -> ``60,27,385,331``)."""
    return (x, y, x + w, y + h)


class RealDataset(Dataset):
    """Base of the real datasets: read a record, transform, normalize, return a Sample.

    Subclasses set ``info`` and ``split_names`` and implement :meth:`_records`;
    they override :meth:`_read` when boxes or masks need more than ``Record.boxes``.
    ``root`` is the dataset's own directory (``data_root / info.subdir``).
    """

    info: ClassVar[DatasetInfo]
    split_names: ClassVar[tuple[str, ...]] = ("train", "test")

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 224,
                 *, augment: str | None = None, strict: bool = True) -> None:
        if split not in self.split_names:
            raise ValueError(
                f"{self.info.title} has the splits {self.split_names}, got {split!r}"
            )
        self.root = require(Path(root), self.info, "dataset directory")
        self.split = split
        self.transform = ProtocolTransform(image_size, augment)
        self.strict = strict
        self.skipped: list[DatasetFormatError] = []
        self.records = [r for r in self._records() if self._valid(r)]
        if not self.records:
            raise self.info.error(
                DatasetFormatError, f"the {split} split has no images (annotation files "
                f"empty, or every record invalid: {len(self.skipped)} skipped)",
                path=self.root)
        if self.skipped:
            warnings.warn(self.skipped_report(), stacklevel=2)

    def bad(self, error: DatasetFormatError) -> None:
        """A bad annotation: raised (``strict``, the default) or kept in ``skipped``."""
        if self.strict:
            raise error
        self.skipped.append(error)

    def skipped_report(self) -> str:
        """How many annotations ``strict=False`` skipped, and where (the first five)."""
        where = "; ".join(f"{e.path}, line {e.line}: {e.problem}" if e.line else
                          f"{e.path}: {e.problem}" for e in self.skipped[:5])
        more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        return (f"{self.info.title} {self.split}: skipped {len(self.skipped)} bad "
                f"annotations (strict=False): {where}{more}")

    def _valid(self, record: Record) -> bool:
        """Check a record's label and boxes (:meth:`bad` on a problem)."""
        path, line = record.where or (self.root, None)
        if not 0 <= record.label < self.num_classes:
            path, line = self.root, None  # the label's file is the dataset's own
            problem = (f"class {record.label} (0-based) is beyond the dataset's "
                       f"{self.num_classes} classes")
        else:
            problem = next(filter(None, map(box_problem, record.boxes)), None)
        if problem is None:
            return True
        self.bad(self.info.error(DatasetFormatError, f"{record.image.name}: {problem}",
                                 path=path, line=line))
        return False

    @property
    def num_classes(self) -> int:
        """The official number of classes (labels are 0-based indices below it)."""
        return self.info.num_classes

    def _records(self) -> list[Record]:
        raise NotImplementedError

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image uint8 ``[H, W, 3]``, boxes ``[K, 4]`` and mask uint8 ``[H, W]``, all at
        the original resolution. Default: ``record.boxes``, mask unknown (all 255)."""
        image = read_image(record.image, self.info)
        boxes = np.asarray(record.boxes, np.float32).reshape(-1, 4)
        return image, boxes, np.full(image.shape[:2], IGNORE, np.uint8)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        image, boxes, mask = self._read(record)
        height, width = image.shape[:2]
        boxes = self._checked_boxes(record, boxes, (height, width))
        moved = self.transform(Annotated(
            torch.from_numpy(image).permute(2, 0, 1).float().div_(255),
            clip_boxes(torch.as_tensor(boxes, dtype=torch.float32), height, width),
            torch.from_numpy(mask),
            torch.zeros(height, width, dtype=torch.bool),
        ))
        return Sample(
            image=normalize_image(moved.image), label=record.label, family=self.info.name,
            boxes=moved.boxes, mask=moved.mask, part_mask=moved.part_mask, index=index,
        )

    def _checked_boxes(self, record: Record, boxes: np.ndarray, size: tuple[int, int]
                       ) -> np.ndarray:
        """The boxes read for ``record``, each checked against its image (a box clipping
        would drop is an error, or with ``strict=False`` dropped with a warning); an
        image whose every box is invalid raises in both modes."""
        problems = [box_problem(box.tolist(), size) for box in boxes]
        if not any(problems):
            return boxes
        path, line = record.where or (record.image, None)
        first = next(p for p in problems if p)
        error = self.info.error(DatasetFormatError, f"{record.image.name}: {first}",
                                path=path, line=line)
        kept = boxes[[p is None for p in problems]]
        if self.strict or not len(kept):
            raise error
        warnings.warn(f"{error} (strict=False: box dropped)", stacklevel=3)
        return kept

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
                f"n={len(self)}, transform={self.transform})")
