"""A Sphinx extension: serve MathJax from the built book instead of a CDN.

The book must render its equations where no CDN is reachable (CI, offline readers), so
MathJax 3 comes from a Python package (``django-static-mathjax``, a copy of MathJax's own
release files; installed with the book's extra) and is copied into ``_static/mathjax``:
the TeX-to-HTML component and the fonts it loads, nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

COMPONENT = "tex-chtml.js"
FONTS = Path("output/chtml/fonts/woff-v2")


def _source() -> Path:
    import mathjax  # django-static-mathjax's package: static files only

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _use_local_copy(app: Sphinx, config: Config) -> None:
    config.mathjax_path = f"mathjax/{COMPONENT}"


def _copy(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = _source(), Path(app.outdir) / "_static" / "mathjax"
    (target / FONTS).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / COMPONENT, target / COMPONENT)
    shutil.copytree(source / FONTS, target / FONTS, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict[str, bool]:
    _source()  # fail at once, naming the package, if it is not installed
    app.connect("config-inited", _use_local_copy)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
