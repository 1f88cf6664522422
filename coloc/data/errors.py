"""Errors raised for missing or malformed datasets.

Every message says what is wrong, where (the path, and the line of an annotation file),
what layout was expected under ``data_root`` and where the dataset is published, so a
reader who has never seen the dataset can fix their copy without reading our code.

- :class:`DatasetNotFoundError` (also a :class:`FileNotFoundError`): a directory or file
  the dataset needs is absent.
- :class:`DatasetFormatError` (also a :class:`ValueError`): a file exists but cannot be
  read: a malformed annotation line, a corrupt image, a ``.mat`` without the expected
  variables.

Both derive from :class:`DatasetError`, so ``except DatasetError`` catches either.
"""

from __future__ import annotations

from pathlib import Path


class DatasetError(Exception):
    """A dataset on disk is missing or malformed (base of the two concrete errors).

    ``path`` and ``line`` (1-based) are kept as attributes for programmatic use.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        content: str | None = None,
        dataset: str | None = None,
        layout: str | None = None,
        url: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.line = line
        parts = [problem]
        if self.path is not None:
            where = f"  path: {self.path}"
            if line is not None:
                where += f", line {line}"
                if content is not None:
                    where += f": {content!r}"
            parts.append(where)
        if layout:
            title = f" of {dataset}" if dataset else ""
            indented = "\n".join("    " + row for row in layout.strip("\n").splitlines())
            parts.append(f"  expected layout{title} under data_root:\n{indented}")
        if url:
            parts.append(f"  the dataset is published at {url}")
        super().__init__("\n".join(parts))


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A directory or file the dataset needs does not exist."""


class DatasetFormatError(DatasetError, ValueError):
    """A dataset file exists but its content is not in the expected format."""
