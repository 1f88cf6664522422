"""The run store and runner, shared by every paper.

- :class:`RunConfig`: the fields every run has (data, backbone, optimization, CorLoc
  rule, device), validation against the allowed values, the run's identity and hash,
  and :meth:`RunConfig.profile`: the CPU profile for the synthetic benchmark, the
  paper's settings for a real dataset, overrides on top. A paper's config
  (:class:`coloc.caml.CAMLConfig`, :class:`coloc.cam.CAMConfig`) subclasses it with its
  method's fields, profiles and allowed values.
- :class:`Method`: what the runner needs of a paper's method (build the model, the
  training step, the score maps of :mod:`coloc.maps`).
- :func:`run`: train-or-load. A run is identified by its configuration
  (:meth:`RunConfig.hash` of :meth:`RunConfig.identity`, with the package version) and
  lives in ``<output_dir>/<paper>/<dataset>/<name>-<hash>/`` (``checkpoint.pt``,
  ``results.json``, ``probes.json``); asking again loads it. :func:`find_run` only looks.
- Each run's results file (:func:`coloc.runtime.write_results`): configuration, metrics,
  per-epoch curves, timings, package version and git commit, so summary tables are
  rebuilt from files.

What is not here: the training loop (:mod:`coloc.train`), the evaluator
(:mod:`coloc.evaluate`), seeding and devices (:mod:`coloc.runtime`), and anything
specific to one paper.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import shutil
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from coloc import distributed
from coloc.boxes import RULES
from coloc.data import DATASETS, DatasetError, DatasetNotFoundError, check, collate_samples, load
from coloc.data.memory import SYNTHETIC, synthetic_split
from coloc.evaluate import Evaluation, evaluate
from coloc.maps import ScoreMaps
from coloc.metrics import IOU_THRESHOLDS
from coloc.models import BACKBONES, build_backbone
from coloc.pretrain import PretrainConfig, families_except, synthetic_pretrained_backbone
from coloc.runtime import (
    DEVICES,
    RunFileError,
    atomic_write_json,
    config_hash,
    jsonable,
    load_torch,
    nearest,
    read_json,
    read_results,
    results_root,
    select_device,
    write_results,
)
from coloc.train import (
    History,
    NonFiniteLossError,
    Parallel,
    StepFn,
    TrainConfig,
    fit,
    to_device,
)

RESULTS_FILE = "results.json"
CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.json"
"""What :func:`coloc.runs.run` records when a run starts (its identity), so an
interrupted run can be listed with its configuration."""
PROBES = 4
"""Images whose raw maps every run records before training and after each epoch."""
AUGMENTS = (None, "psynet", "wsol")
SELECTS = ("last", *(f"val:corloc@{key}" for key in (*map(str, IOU_THRESHOLDS), "mean")))
"""The model choices of ``select``: the last epoch, or the best epoch by a validation
metric the runner records (:func:`run`'s ``validate``)."""


# ----------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Range:
    """The allowed interval of a numeric field (of each element, for a tuple field):
    ``[low, high]``, an end left out when ``low_open``/``high_open``; ``unit`` for the
    message. Declared per field in a config's ``RANGES``."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    unit: str = ""

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        elif self.low == -math.inf:
            text = f"{'<' if self.high_open else '<='} {self.high:g}"
        else:
            text = (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        return text


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _type_error(kind: Any, value: Any) -> str | None:
    """Why ``value`` is not of the annotated type ``kind`` (None if it is): ``int``
    refuses bools and 2.5, ``float`` takes ints but refuses NaN and infinity, ``bool``
    refuses the string ``"False"``; unions, ``None``, ``Literal`` and ``tuple[T, ...]`` or
    ``tuple[A, B]`` recurse."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        reasons = [_type_error(option, value) for option in args]
        return None if None in reasons else f"expected {_type_name(kind)}, got {value!r}"
    if kind is type(None):
        return None if value is None else f"expected None, got {value!r}"
    if origin is typing.Literal:
        return None if value in args else f"expected one of {listing(args)}, got {value!r}"
    if origin is tuple:
        if not isinstance(value, tuple):
            return f"expected a tuple (or list) of {_type_name(args[0])}, got {value!r}"
        kinds = [args[0]] * len(value) if args[1:] == (...,) else list(args)
        if len(kinds) != len(value):
            return f"expected {len(kinds)} elements, got {value!r}"
        pairs = enumerate(zip(kinds, value, strict=True))
        return next((f"element {i}: {why}" for i, (kind, item) in pairs
                     if (why := _type_error(kind, item))), None)
    if kind is bool:
        return None if isinstance(value, bool) else f"expected True or False, got {value!r}"
    if kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return None if ok else f"expected an integer, got {value!r}"
    if kind is float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return f"expected a number, got {value!r}"
        return None if math.isfinite(value) else f"expected a finite number, got {value!r}"
    if kind is str:
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    return None  # a type this checker does not know: accepted as it is


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """``; did you mean 'epochs'?`` for a misspelt name (:func:`coloc.runtime.nearest`),
    or ``""``."""
    close = nearest(name, known)
    return f"; did you mean {close!r}?" if close else ""


# ----------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class RunConfig:
    """The fields every run has; a paper's config subclasses it with its own.

    Class attributes a subclass sets: ``PAPER`` (the results folder), ``DATASETS``
    (allowed dataset names), ``CPU_PROFILE`` and ``PAPER_PROFILE`` (the values
    :meth:`profile` starts from), ``CHOICES`` (allowed values of categorical fields),
    ``RANGES`` (a :class:`Range` per numeric field; extend with
    ``{**RunConfig.RANGES, "x": Range(0, 1)}``).

    Validation at the door (:meth:`validate`, run by ``__post_init__``, so by every
    subclass that calls ``super().__post_init__()``): every field is checked against its
    annotation (``epochs=2.5``, ``pretrained="False"``, ``theta_bg=nan`` and
    ``milestones="60"`` are refused), then ``RANGES``, ``CHOICES`` and ``select``; the
    message names the field, the value and what is allowed, before anything trains.
    Fields that do not change the result (``data_root``, ``device``, ``num_workers``,
    and how it is spread over processes: ``accumulate``, ``sync_bn``) are left out of
    :meth:`identity`, so a run on another machine, path or number of GPUs is the same
    run (``batch_size`` is the global batch whatever the number of processes).
    The optimization fields are :class:`coloc.train.TrainConfig`'s, by name.
    """

    dataset: str = "synthetic"
    data_root: str | None = None
    image_size: int = 64
    train_samples: int | None = None  # synthetic only: None = the whole split
    val_samples: int | None = None
    test_samples: int | None = None
    augment: str | None = None  # training transform of coloc.data.load
    backbone: str = "small_cnn"
    pretrained: bool = False
    weights_path: str | None = None
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    seed: int = 0
    select: str = "last"  # or "val:<metric>", e.g. "val:corloc@0.5"
    amp: bool = True  # used on CUDA only
    channels_last: bool = True  # used on CUDA only
    corloc_threshold: float = 0.2
    corloc_rule: str = "raw"
    device: str = "auto"
    num_workers: int = 0
    accumulate: int = 1  # micro-batches per step and process (coloc.train.Parallel)
    sync_bn: bool = False  # SyncBatchNorm under torchrun (coloc.train.Parallel)

    PAPER: ClassVar[str] = "run"
    DATASETS: ClassVar[tuple[str, ...]] = SYNTHETIC
    CPU_PROFILE: ClassVar[Mapping[str, Any]] = {}
    PAPER_PROFILE: ClassVar[Mapping[str, Any]] = {}
    CHOICES: ClassVar[Mapping[str, Sequence]] = {
        "backbone": BACKBONES,
        "corloc_rule": RULES,
        "device": DEVICES,
        "augment": AUGMENTS,
    }
    RANGES: ClassVar[Mapping[str, Range]] = {
        "image_size": Range(1, unit="pixels"),
        "train_samples": Range(1, unit="images"),
        "val_samples": Range(1, unit="images"),
        "test_samples": Range(1, unit="images"),
        "epochs": Range(1),
        "batch_size": Range(1),
        "lr": Range(0, low_open=True),
        "momentum": Range(0, 1, high_open=True),
        "weight_decay": Range(0),
        "milestones": Range(1, unit="epochs"),
        "gamma": Range(0, low_open=True),
        "seed": Range(0),
        "corloc_threshold": Range(0, 1, high_open=True, unit="a fraction of the map's max"),
        "num_workers": Range(0),
    }
    SELECTS: ClassVar[tuple[str, ...]] = SELECTS
    NOT_IDENTITY: ClassVar[tuple[str, ...]] = ("data_root", "device", "num_workers",
                                               "accumulate", "sync_bn")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field: its annotated type, ``RANGES``, ``DATASETS``, ``CHOICES``
        and ``select``; raise ``ValueError`` naming the field and what is allowed."""
        for name, kind in _field_types(type(self)).items():
            value = getattr(self, name)
            why = _type_error(kind, value)
            if why:
                raise ValueError(f"{name}: {why}")
            allowed = self.RANGES.get(name)
            values = value if isinstance(value, tuple) else (value,)
            if allowed is not None and any(v is not None and v not in allowed for v in values):
                unit = f" ({allowed.unit})" if allowed.unit else ""
                raise ValueError(f"{name} must be {allowed}, got {value}{unit}")
        if self.dataset not in self.DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; allowed: "
                             f"{listing(self.DATASETS)}")
        for name, allowed in self.CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; allowed: {listing(allowed)}")
        if self.select not in self.SELECTS:
            raise ValueError(f"select must be 'last' or 'val:<metric>', got {self.select!r}"
                             f"{did_you_mean(self.select, self.SELECTS)} (allowed: "
                             f"{listing(self.SELECTS)})")
        TrainConfig(**self._train_fields())
        Parallel(self.accumulate, self.sync_bn)  # validates accumulate

    @property
    def name(self) -> str:
        """A readable run name (the folder name before the hash); papers refine it."""
        return self.PAPER

    @property
    def synthetic_pretraining(self) -> PretrainConfig | None:
        """The stand-in for ImageNet weights this run starts from (:mod:`coloc.pretrain`):
        set for a synthetic dataset with ``pretrained=True`` and no ``weights_path``."""
        if self.dataset not in SYNTHETIC or not self.pretrained or self.weights_path:
            return None
        family = "bird" if self.dataset == "synthetic" else self.dataset.split("-", 1)[1]
        return PretrainConfig(backbone=self.backbone, image_size=self.image_size,
                              families=families_except(family))

    def synthetic_options(self) -> dict[str, Any]:
        """Further :class:`~coloc.data.synthetic.SyntheticDataset` arguments of this run's
        data (none by default; the CAM baseline sets ``context_bias``)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """The fields that define the run's result (everything but paths and devices),
        plus the hash of the synthetic pretraining it starts from, if any."""
        identity = {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}
        pretraining = self.synthetic_pretraining
        identity["pretraining"] = pretraining.hash() if pretraining else None
        return identity

    def hash(self) -> str:
        """:func:`coloc.runtime.config_hash` of :meth:`identity` (with the package version)."""
        return config_hash(jsonable(self.identity()))

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated like the original)."""
        return dataclasses.replace(self, **changes)

    def _train_fields(self) -> dict[str, Any]:
        # A paper's config may leave out a later optimization field (e.g. ``schedule``):
        # TrainConfig's default then applies and the config's identity is unchanged.
        names = ({f.name for f in dataclasses.fields(TrainConfig)} - {"device", "extra"}) & {
            f.name for f in dataclasses.fields(self)}
        values = {name: getattr(self, name) for name in names}
        values["milestones"] = tuple(values["milestones"])
        return values

    def train_config(self, device: str) -> TrainConfig:
        """The :class:`coloc.train.TrainConfig` of this run (its hash in ``extra``)."""
        return TrainConfig(**self._train_fields(), device=device, extra={"run": self.hash()})

    @classmethod
    def profile(cls, dataset: str = "synthetic", *, require_data: bool = True,
                **overrides: Any) -> Self:
        """Resolve a run configuration: the dataset's profile, then ``overrides``.

        A synthetic dataset gets ``CPU_PROFILE``; a real one ``PAPER_PROFILE`` and, on
        CUDA, DataLoader workers. Overrides that are ``None`` keep the profile's value
        (papermill parameters default to None); any other value wins. Unknown names
        raise ``TypeError`` listing the fields, unknown values ``ValueError`` listing the
        allowed values. A real dataset must be present under ``data_root``: otherwise the
        loader's error (expected path, layout, where to download) is raised here, before
        anything trains. ``require_data=False`` skips that check, to name a run (e.g.
        look up a recorded one) without the data.
        """
        if dataset not in cls.DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; allowed: {listing(cls.DATASETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            hint = did_you_mean(unknown[0], sorted(fields))
            raise TypeError(f"unknown parameters {unknown}{hint}; allowed: "
                            f"{', '.join(sorted(fields))}")
        synthetic = dataset in SYNTHETIC
        values = dict(cls.CPU_PROFILE if synthetic else cls.PAPER_PROFILE)
        if not synthetic:
            device = overrides.get("device") or values["device"]
            if device in DEVICES and select_device(device).type == "cuda":
                values["num_workers"] = min(8, os.cpu_count() or 1)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("milestones"), list):  # a list (YAML, JSON) is a tuple
            values["milestones"] = tuple(values["milestones"])
        config = cls(dataset=dataset, **values)
        if not synthetic and require_data:
            _require_dataset(config)
        return config

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any], *, require_data: bool = True,
                        **changes: Any) -> Self:
        """:meth:`profile` of ``parameters["dataset"]`` with every other entry of
        ``parameters`` that names a field as an override, then ``changes``.

        A chapter passes its parameters cell this way (``from_parameters(globals())``)
        instead of repeating each name; entries that are not fields (``output_dir``,
        ``force``, imported modules) are ignored.
        """
        fields = {f.name for f in dataclasses.fields(cls)} - {"dataset"}
        overrides = {k: v for k, v in parameters.items() if k in fields}
        return cls.profile(parameters["dataset"], require_data=require_data,
                           **{**overrides, **changes})


def listing(values: Sequence) -> str:
    """``'a', 'b', None``: allowed values for an error message."""
    return ", ".join(repr(v) for v in values)


def _require_dataset(config: RunConfig) -> None:
    """Fail now, with the loader's message, when a real dataset is missing."""
    if config.data_root is None or check(config.dataset, config.data_root):
        load(config.dataset, config.data_root, "train", config.image_size)  # raises
        missing = check(config.dataset, config.data_root)
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetNotFoundError(  # the loader found it after all: name what is missing
            f"{DATASETS[config.dataset].title}: {len(missing)} files missing: "
            f"{', '.join(missing[:5])}{more}"
        )


def backbone(config: RunConfig, output_dir: str | Path | None = None) -> nn.Module:
    """The run's backbone: ImageNet weights for the paper backbones (``pretrained``), on
    the synthetic benchmark the stand-in of :mod:`coloc.pretrain` (trained once, cached
    under ``output_dir``); a ``weights_path`` wins over both."""
    pretraining = config.synthetic_pretraining
    if pretraining is not None:
        weights = synthetic_pretrained_backbone(pretraining, results_root(output_dir))
        return build_backbone(config.backbone, weights_path=weights)
    return build_backbone(config.backbone, config.pretrained, config.weights_path)


# ----------------------------------------------------------------------------- data


def dataset_split(config: RunConfig, split: str, train: bool = False) -> Dataset:
    """The ``split`` of the run's dataset at ``config.image_size``.

    Training (``train=True``) uses ``config.augment``; evaluation the protocol's test
    transform. Synthetic splits are generated once per process and kept in memory (the
    data seed is 0 whatever the run's seed: the benchmark is fixed, the run varies).
    ``train_samples``/``val_samples``/``test_samples`` cap a split (None: all of it).
    """
    sizes = {"train": config.train_samples, "val": config.val_samples,
             "test": config.test_samples}
    if config.dataset in SYNTHETIC:
        options = config.synthetic_options()
        if train and config.augment is not None:
            kwargs = {} if sizes[split] is None else {"num_samples": sizes[split]}
            return load(config.dataset, split=split, image_size=config.image_size,
                        augment=config.augment, **options, **kwargs)
        return synthetic_split(config.dataset, split, config.image_size, sizes[split], 0,
                               tuple(sorted(options.items())))
    dataset = load(config.dataset, config.data_root, split, config.image_size,
                   augment=config.augment if train else None)
    if sizes[split] is not None and sizes[split] < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(sizes[split]))
    return dataset


def has_split(config: RunConfig, split: str) -> bool:
    """Whether the run's dataset has ``split`` (synthetic: all three)."""
    return config.dataset in SYNTHETIC or split in DATASETS[config.dataset].splits


def optional_val(config: RunConfig) -> Dataset | None:
    """The val split for per-epoch metrics, or None where there is none (Cars, Aircraft,
    Dogs) or it is not on disk (CUB's val is wsolevaluation's metadata, an extra
    download); a ``select="val:..."`` run needs it and fails with the loader's error."""
    if not has_split(config, "val"):
        return None
    try:
        return dataset_split(config, "val")
    except DatasetError:
        if config.select.startswith("val:"):
            raise
        return None


def probe_split(config: RunConfig) -> Dataset:
    """Where the probe images come from (maps recorded after every epoch, e.g. CAML
    Figure 5b): the val split, or the test split where there is no val split (a figure,
    never a model choice)."""
    val = optional_val(config)
    return val if val is not None else dataset_split(config, "test")


# ----------------------------------------------------------------------------- runs


class RunFailedError(RuntimeError):
    """The run diverged (its loss or a metric went NaN or infinite): it is recorded with
    ``status: "failed"`` and the reason, never as complete, and is not retrained unasked."""


@dataclass(frozen=True)
class Method:
    """What the runner needs of a paper's method.

    ``build_model(config, output_dir)``: the network, with its pretrained weights (the
    synthetic stand-in is cached under ``output_dir``). ``make_step(config)``: the
    training step of :func:`coloc.train.fit`. ``score_maps(model, batch)``: the
    evaluation maps of :mod:`coloc.maps`. ``probe_maps(model, batch)``: raw maps at
    feature resolution ``[B, h, w]``, recorded for a few images after every epoch.
    ``map_scores``: label-free per-image scores of the evaluation maps (name ->
    ``maps [B, H, W] -> [B]``), averaged on val after every epoch next to CorLoc, so a
    run can select its epoch on them (``select="val:<name>"``, e.g. WeightMap's Eq. 6).
    """

    build_model: Callable[[Any, str | Path | None], nn.Module]
    make_step: Callable[[Any], StepFn]
    score_maps: ScoreMaps
    probe_maps: Callable[[nn.Module, dict], torch.Tensor]
    map_scores: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] = field(
        default_factory=dict)


@dataclass
class Run:
    """A trained (or loaded) run: its method, configuration, folder and recorded results.

    ``record`` is the results JSON (:func:`write_results`): ``metrics`` hold the test
    :class:`~coloc.evaluate.Evaluation` (``metrics["test"]``) and the selected epoch;
    ``curves`` the step and epoch losses, per-epoch validation CorLoc and the probe maps
    recorded after every epoch. :meth:`model` loads the reported weights.
    """

    method: Method
    config: RunConfig
    directory: Path
    record: dict[str, Any]
    _model: nn.Module | None = field(default=None, repr=False)

    @property
    def test(self) -> Evaluation:
        return Evaluation.from_dict(self.record["metrics"]["test"])

    @property
    def curves(self) -> dict[str, Any]:
        return self.record["curves"]

    @property
    def seconds(self) -> dict[str, float]:
        return self.record["timings"]

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The reported model (last epoch, or the epoch chosen on val), in eval mode."""
        if self._model is None:
            state = load_torch(self.directory / CHECKPOINT_FILE)
            model = self.method.build_model(
                self.config.replace(pretrained=False, weights_path=None), None)
            model.load_state_dict(state["best_model"] or state["model"])
            self._model = model
        return self._model.to(device).eval()

    @torch.no_grad()
    def score_maps(self, batch: dict) -> torch.Tensor:
        """The reported model's evaluation maps of ``batch`` (on the CPU), ``[B, H, W]``."""
        return self.method.score_maps(self.model(), batch)


def run_directory(config: RunConfig, output_dir: str | Path | None = None) -> Path:
    """``<output_dir>/<paper>/<dataset>/<name>-<hash>``: where the run of ``config`` lives."""
    return (results_root(output_dir) / config.PAPER / config.dataset
            / f"{config.name}-{config.hash()}")


def find_run(method: Method, config: RunConfig, output_dir: str | Path | None = None
             ) -> Run | None:
    """The recorded run of ``config`` under ``output_dir``, or None when there is none.

    A damaged folder raises :class:`coloc.runtime.RunFileError` naming the file and the
    remedy (a results file that is truncated, not JSON or lacks ``metrics``; results
    whose checkpoint was deleted); a run recorded as failed raises :class:`RunFailedError`.
    Neither is silently retrained over.
    """
    directory = run_directory(config, output_dir)
    path = directory / RESULTS_FILE
    if not path.is_file():
        return None
    record = read_results(path)
    if record.get("config_hash") != config.hash():
        return None
    if record.get("status", "complete") == "failed":
        raise RunFailedError(
            f"the run in {directory} is recorded as failed: {record.get('error')}. Change "
            "the configuration (e.g. a lower lr), or pass force=True to train it again")
    if not isinstance(record["metrics"], dict) or "test" not in record["metrics"]:
        raise RunFileError(path, "lacks the test metrics (metrics.test)")
    if not (directory / CHECKPOINT_FILE).is_file():
        raise RunFileError(directory / CHECKPOINT_FILE,
                           f"is missing, but the run's results ({path.name}) are recorded",
                           "restore it, or pass force=True to train the run again (which "
                           "replaces the results)")
    return Run(method, config, directory, record)


def run(method: Method, config: RunConfig, output_dir: str | Path | None = None, *,
        force: bool = False) -> Run:
    """Train the run of ``config`` and evaluate it on test, or load it if recorded.

    A recorded run (same :meth:`RunConfig.hash`, i.e. same configuration and package
    version) under ``output_dir`` (default: :func:`results_root`) is loaded, not
    retrained; ``force=True`` deletes it and trains again. An interrupted run resumes
    from its last checkpoint (:func:`coloc.train.fit`). The model is seeded with
    ``config.seed`` before it is built, so a run does not depend on what ran before it
    in the process.

    After every epoch the run records the validation CorLoc and the method's
    ``map_scores`` (on ``config.val_samples`` val images, where the dataset has a val
    split) and the raw maps of the first
    :data:`PROBES` val images (test images where there is no val split), before training
    and after each epoch. The test split is evaluated once, on the reported model (last
    epoch by default; a ``select="val:..."`` run picks its epoch on val, never on test).

    Under ``torchrun`` (:mod:`coloc.distributed`) every process calls this: training is
    data-parallel (:func:`coloc.train.fit`), validation and test are sharded
    (:func:`coloc.evaluate.evaluate`), rank 0 alone writes files, and every rank
    returns the recorded run. The record's timings hold images/s per epoch and the
    number of processes.
    """
    directory = run_directory(config, output_dir)
    device = distributed.setup(select_device(config.device))
    if force and directory.exists() and distributed.is_main():
        shutil.rmtree(directory)
    distributed.barrier()
    recorded = None if force else find_run(method, config, output_dir)
    if recorded is not None:
        return recorded

    if distributed.is_main():  # lets an interrupted run be listed with its configuration
        atomic_write_json(directory / CONFIG_FILE, jsonable(config.identity()),
                          sort_keys=True)
    train_set = dataset_split(config, "train", train=True)
    val_set = optional_val(config)
    if config.synthetic_pretraining is not None:  # before seeding: cached or not, same RNG
        with distributed.main_first():  # rank 0 trains and caches it, the others load it
            synthetic_pretrained_backbone(config.synthetic_pretraining,
                                          results_root(output_dir))
    torch.manual_seed(config.seed)
    model = method.build_model(config, output_dir)
    probe_set = probe_split(config)
    probe_batch = collate_samples([probe_set[i] for i in range(min(PROBES, len(probe_set)))])
    probes_path = directory / "probes.json"
    probes: dict[str, list] = read_json(probes_path) if probes_path.is_file() else {}

    def record_probes(net: nn.Module, epoch: int) -> None:
        net.eval()
        with torch.no_grad():
            maps = method.probe_maps(net, to_device(probe_batch, device))
        if not torch.isfinite(maps).all():
            raise NonFiniteLossError(f"the probe maps after epoch {epoch + 1} are not finite")
        probes[str(epoch)] = np.round(maps.float().cpu().numpy(), 5).tolist()
        if distributed.is_main():
            atomic_write_json(probes_path, probes)
        net.train()

    if "-1" not in probes:
        record_probes(model.to(device), -1)  # before training

    def validate(net: nn.Module) -> dict[str, float]:
        result = evaluate(method.score_maps, net, val_set, batch_size=config.batch_size,
                          device=device, threshold=config.corloc_threshold,
                          rule=config.corloc_rule, max_box_acc=False, desc="val",
                          map_scores=method.map_scores)
        net.train()
        return {**{f"corloc@{k}": v for k, v in result.corloc.items()}, **result.scores}

    started = time.perf_counter()
    try:
        history: History = fit(
            model, train_set, method.make_step(config), config.train_config(str(device)),
            directory, evaluate=validate if val_set is not None else None,
            on_epoch_end=record_probes, parallel=Parallel(config.accumulate, config.sync_bn),
        )
    except NonFiniteLossError as err:  # recorded as failed, never as complete
        if distributed.is_main():
            write_results(directory / RESULTS_FILE, config.identity(), {},
                          {"probe_maps": probes}, {"train": time.perf_counter() - started},
                          error=str(err))
        raise RunFailedError(f"the run in {directory} diverged: {err}") from err
    train_seconds = time.perf_counter() - started
    test = evaluate(method.score_maps, model, dataset_split(config, "test"),
                    batch_size=config.batch_size, device=device,
                    threshold=config.corloc_threshold, rule=config.corloc_rule,
                    num_workers=config.num_workers)
    metrics = {"test": test.to_dict(), "selected_epoch": history.selected_epoch,
               "select": config.select}
    curves = {
        "step_losses": history.step_losses, "epoch_losses": history.epoch_losses,
        "val": history.val_metrics, "probe_maps": probes,
    }
    timings = {"train": train_seconds, "epochs": history.epoch_seconds, "test": test.seconds,
               "images_per_second": history.images_per_second,
               "processes": distributed.world_size()}
    if distributed.is_main():
        write_results(directory / RESULTS_FILE, config.identity(), metrics, curves, timings)
    distributed.barrier()
    # Read back: a trained run then holds exactly what a loaded one would (JSON floats).
    record = read_results(directory / RESULTS_FILE)
    if record["status"] == "failed":
        raise RunFailedError(f"the run in {directory} is recorded as failed: {record['error']}")
    return Run(method, config, directory, record, model.cpu().eval())
