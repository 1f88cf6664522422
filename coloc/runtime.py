"""The process a run lives in: seeding and determinism, devices, progress bars, timers,
and the run store's files: one atomic writer and one checked reader for each kind.

Every recorded run writes ``results/<paper>/<dataset>/<run>/results.json``
(:func:`write_results`): its configuration, metrics, per-epoch curves, timings, the
package version and the git commit, named by :func:`config_hash`, and its ``status``
(``"complete"``, or ``"failed"`` for a run whose loss or metrics went non-finite). What a
run *is* (configurations, profiles, train-or-load) is :mod:`coloc.runs`; the training
loop is :mod:`coloc.train`.

Files: every file of the run store (results, probes, claims, checkpoints, the
pretraining cache) is written by :func:`atomic_write_json` or :func:`atomic_save_torch`
(a temporary file, then a rename: a full disk or a kill leaves the old file or the new
one, never half), as strict JSON (no ``NaN`` tokens). It is read back by
:func:`read_json` or :func:`load_torch`, which turn a truncated or malformed file into
:class:`RunFileError` naming the path and the remedy.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import io
import json
import math
import os
import pickle
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
STATUSES = ("complete", "failed")
"""A results file's ``status``: every metric finite, or the run diverged."""


class RunFileError(RuntimeError):
    """A file of the run store is damaged (truncated, not JSON, lacking an entry, or
    missing beside the others). ``path`` is the file; the message says what to do."""

    def __init__(self, path: str | Path, problem: str, remedy: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        remedy = remedy or (f"delete {self.path.parent} (or pass force=True to the run) "
                            "to compute it again")
        super().__init__(f"{self.path}: {problem}; {remedy}")


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """A tqdm.auto progress bar, off when the environment sets ``COLOC_PROGRESS=0``.

    nbval sets it (see conftest.py): a bar's refresh count depends on timing, so stored
    notebook outputs could never match it. Give a DataLoader's length as ``total`` and
    call ``update()``, rather than wrapping the loader: tqdm.auto's constructor opens an
    iterator of its iterable, a second one per loop (its own workers, a shuffle draw).
    """
    kwargs.setdefault("disable", os.environ.get("COLOC_PROGRESS", "1") == "0")
    return tqdm(iterable, **kwargs)


def base_seed_draw(generator: torch.Generator | None = None) -> None:
    """The draw a DataLoader iterator makes when it opens (from its generator, or from
    torch's global one). Until the progress bars stopped wrapping loaders, tqdm.auto
    opened a second iterator per loop; its draw is made explicitly where a random stream
    that later training reads followed it, so recorded runs keep their numbers."""
    torch.empty((), dtype=torch.int64).random_(generator=generator)


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


def atomic_write_json(path: str | Path, value: Any, **kwargs: Any) -> None:
    """Write ``value`` as strict JSON (``allow_nan=False``: a NaN or infinity raises
    ValueError instead of writing a token other parsers reject), atomically."""
    atomic_write_bytes(path, json.dumps(value, allow_nan=False, **kwargs).encode())


def atomic_save_torch(path: str | Path, value: Any) -> None:
    """``torch.save`` of ``value`` to ``path``, atomically (checkpoints, cached weights)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: str | Path, required: tuple[str, ...] = (), remedy: str | None = None
              ) -> Any:
    """The JSON value in ``path``; with ``required``, an object holding those keys.

    A file that cannot be read, is not JSON (e.g. truncated) or lacks a key raises
    :class:`RunFileError` naming the path and ``remedy`` (default: delete the folder or
    pass ``force=True``).
    """
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(path, f"cannot be read ({exc})", remedy) from exc
    except json.JSONDecodeError as exc:
        raise RunFileError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno}); the "
                                 "file is damaged, e.g. truncated", remedy) from exc
    if required:
        absent = [key for key in required if not isinstance(value, dict) or key not in value]
        if absent:
            raise RunFileError(path, f"lacks the entries {absent}", remedy)
    return value


def load_torch(path: str | Path, map_location: str | torch.device = "cpu",
               remedy: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)``; a truncated or foreign file raises
    :class:`RunFileError` naming the path and ``remedy``."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise RunFileError(path, "is missing", remedy) from exc
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunFileError(path, f"is not a readable torch file ({first}); the file is "
                                 "damaged, e.g. truncated", remedy) from exc


def non_finite(value: Any, where: str = "") -> list[str]:
    """The places (``"metrics.test.corloc.0.5"``) of the NaN or infinite floats in a
    JSON-like ``value`` (after :func:`jsonable`)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where} = {value}"]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}".lstrip("."))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


def _finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON ``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


PAPERMILL_MARK = "# Parameters"
"""The first line of the cell papermill injects after a chapter's parameters cell."""


def nearest(name: str, known: Any) -> str | None:
    """The known name closest to a misspelt ``name`` (difflib), or None."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None


def _assigned_names(source: str) -> set[str]:
    """Names a cell assigns at top level (``x = ...``, ``x: int = ...``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def unknown_parameters(cells: list[str]) -> list[str]:
    """The parameters papermill injected that the chapter's parameters cell does not
    define, from the kernel's executed cells ``cells`` (IPython's ``In``): the injected
    cell starts with :data:`PAPERMILL_MARK` and follows the parameters cell."""
    marks = [i for i, cell in enumerate(cells) if cell.startswith(PAPERMILL_MARK)]
    if not marks or marks[-1] == 0:
        return []
    injected = marks[-1]
    return sorted(_assigned_names(cells[injected]) - _assigned_names(cells[injected - 1]))


def check_parameters(cells: list[str] | None = None) -> None:
    """Stop a chapter whose papermill parameters name something its parameters cell does
    not (papermill itself only logs a warning, and the full default run would start):
    ``TypeError`` naming the unknown parameter and the nearest known one. Called at the
    top of each chapter's first cell; ``cells`` defaults to the kernel's executed cells
    (nothing to check outside IPython or without papermill)."""
    if cells is None:
        try:
            from IPython import get_ipython  # only inside a kernel
        except ImportError:
            return
        shell = get_ipython()
        cells = list(shell.user_ns.get("In", [])) if shell is not None else []
    unknown = unknown_parameters(cells)
    if not unknown:
        return
    injected = max(i for i, cell in enumerate(cells) if cell.startswith(PAPERMILL_MARK))
    known = sorted(_assigned_names(cells[injected - 1]))
    hints = [f"{name!r} (did you mean {close!r}?)" if (close := nearest(name, known))
             else repr(name) for name in unknown]
    raise TypeError(f"unknown parameter {', '.join(hints)}: this chapter's parameters cell "
                    f"has no such name, so it would be ignored. Known parameters: "
                    f"{', '.join(known)}")


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
    error: str | None = None,
) -> dict:
    """Write a run's results JSON atomically (strict JSON) and return the record written.

    The record holds ``config``, ``metrics``, per-epoch ``curves``, ``timings`` (seconds),
    ``version`` (coloc), ``commit`` (git, or None outside a checkout), ``torch``,
    ``config_hash`` (see :func:`config_hash`) and ``status``: ``"failed"`` when ``error``
    is given (e.g. the loss diverged) or a metric or curve is NaN or infinite (each such
    value is written as ``null`` and listed in ``error``), else ``"complete"``.
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
    bad = non_finite({"metrics": record["metrics"], "curves": record["curves"]})
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        error = "; ".join(filter(None, [error, f"non-finite values: {shown}"]))
        record = _finite_or_none(record)
    record["status"] = "failed" if error else "complete"
    if error:
        record["error"] = error
    atomic_write_json(path, record, indent=2, sort_keys=True)
    return record


def read_results(path: str | Path, remedy: str | None = None) -> dict:
    """Read a results JSON written by :func:`write_results` (checked by :func:`read_json`:
    it must hold ``config`` and ``metrics``)."""
    return read_json(path, ("config", "metrics"), remedy)
