"""The process a run lives in: seeding and determinism, devices, progress bars, timers,
atomic file writes, and the results file every cached artefact is recorded in.

Every recorded run writes ``results/<paper>/<dataset>/<run>/results.json``
(:func:`write_results`): its configuration, metrics, per-epoch curves, timings, the
package version and the git commit, named by :func:`config_hash`. What a run *is*
(configurations, profiles, train-or-load) is :mod:`coloc.runs`; the training loop is
:mod:`coloc.train`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from coloc import __version__

DEVICES = ("auto", "cpu", "cuda", "mps")


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """A tqdm.auto progress bar, off when the environment sets ``COLOC_PROGRESS=0``.

    nbval sets it (see conftest.py): a bar's refresh count depends on timing, so stored
    notebook outputs could never match it. Give a DataLoader's length as ``total`` and
    call ``update()``, rather than wrapping the loader: tqdm.auto's constructor opens an
    iterator of its iterable, a second one per loop (its own workers, a shuffle draw).
    """
    kwargs.setdefault("disable", os.environ.get("COLOC_PROGRESS", "1") == "0")
    return tqdm(iterable, **kwargs)


def seed_everything(seed: int, deterministic: bool = True, threads: int | None = None) -> None:
    """Seed Python, NumPy and torch; optionally force deterministic kernels.

    ``deterministic`` turns on ``torch.use_deterministic_algorithms`` (warn-only, so a
    GPU op without a deterministic kernel warns instead of failing) and disables cuDNN
    benchmarking. ``threads`` fixes torch's intra-op thread count, which CPU results
    depend on (reductions split differently across threads).
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code still draws from the legacy global
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def select_device(name: str = "auto") -> torch.device:
    """Resolve a device name: "auto" -> CUDA when available, else MPS, else CPU.

    Asking for an unavailable accelerator raises ValueError instead of silently
    training on the CPU for days.
    """
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch.cuda.is_available() is False")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was asked for but MPS is not available")
    return torch.device(name)


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the working tree that holds ``path`` (default: this package), or None."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def config_hash(config: Mapping[str, Any]) -> str:
    """A short stable identifier of a run's full configuration (and package version)."""
    payload = json.dumps({"config": config, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then rename.

    An interrupted run therefore leaves either the old file or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Timer:
    """Accumulate named wall-clock timings: ``with timer("train"): ...``; ``timer.seconds``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def results_root(output_dir: str | Path | None = None) -> Path:
    """``output_dir``, or by default ``results/`` at the root of the checkout this package
    is imported from (``./results`` for an installed package), whatever the working
    directory: the notebooks (run from ``book/``) and scripts find the same runs."""
    if output_dir is not None:
        return Path(output_dir)
    root = Path(__file__).resolve().parents[1]
    return root / "results" if (root / "pyproject.toml").is_file() else Path("results")


def jsonable(value: Any) -> Any:
    """Convert tensors, arrays and numpy scalars (and dict keys such as 0.5) for JSON."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(
    path: str | Path,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    curves: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
) -> dict:
    """Write a run's results JSON atomically and return the record written.

    The record holds ``config``, ``metrics``, per-epoch ``curves``, ``timings`` (seconds),
    ``version`` (coloc), ``commit`` (git, or None outside a checkout), ``torch`` and
    ``config_hash`` (see :func:`config_hash`).
    """
    record = {
        "config": jsonable(dict(config)),
        "metrics": jsonable(dict(metrics)),
        "curves": jsonable(dict(curves or {})),
        "timings": jsonable(dict(timings or {})),
        "version": __version__,
        "commit": git_commit(),
        "torch": torch.__version__,
        "config_hash": config_hash(jsonable(dict(config))),
    }
    atomic_write_bytes(path, json.dumps(record, indent=2, sort_keys=True).encode())
    return record


def read_results(path: str | Path) -> dict:
    """Read a results JSON written by :func:`write_results`."""
    return json.loads(Path(path).read_text())
