"""Open every page of the built book in headless Chromium and check it renders.

For each HTML page listed by the table of contents: take a screenshot, check that every
<img> loaded (complete with a natural width), that chapter pages carry at least one
figure, that every figure has a caption, that every page of a method chapter renders
at least one equation (MathJax output), that no text output is wider than the text
column (the check names the cell), that no link points at a file outside the book, and
that no notebook error (a Traceback) was rendered. Exits 1 on any problem.

usage: python .ci/check_pages.py _build/html _build/screenshots
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[1]
BROKEN_IMAGES = """return Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src);"""
UNCAPTIONED = """return Array.from(document.querySelectorAll('main img'))
    .filter(img => !(img.closest('figure') && img.closest('figure').querySelector('figcaption')))
    .map(img => img.src.slice(-60));"""
EQUATIONS = "return document.querySelectorAll('mjx-container').length;"
WIDE_OUTPUTS = """return Array.from(document.querySelectorAll('.cell_output pre'))
    .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => pre.innerText.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 80));"""
LINKS = "return Array.from(document.querySelectorAll('main a[href]')).map(a => a.href);"
TEXT_PAGES = ("book/references",)
"""Pages that are text only (the bibliography): no figure expected."""
METHOD_CHAPTERS = ("book/caml_", "book/inca", "book/weightmap", "book/contracam")
"""Pages of a method's chapters: each renders at least one equation."""


def toc_pages() -> list[str]:
    """The pages in _toc.yml, in order ("book/intro", "book/metrics", ...), whether the
    chapters are listed flat or in parts."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c for part in toc.get("parts", []) for c in part["chapters"]]
    return [toc["root"]] + [c["file"] for c in chapters + toc.get("chapters", [])]


def _bad_link(href: str, html_dir: Path) -> list[str]:
    """What is wrong with a link: a file of the book that does not exist, or a web address
    that is really a file name (e.g. "http://PROTOCOL.md", a linkified word)."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        target = Path(unquote(parsed.path))
        if html_dir.resolve() not in target.resolve().parents or not target.exists():
            return [f"link to a file outside the book or missing: {href}"]
    elif parsed.scheme in ("http", "https") and Path(parsed.netloc).suffix in FILE_SUFFIXES:
        return [f"link to a file name taken for a web address: {href}"]
    return []


FILE_SUFFIXES = (".md", ".py", ".txt", ".json", ".ipynb", ".yml")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,2000"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def main(html_dir: Path, shots_dir: Path) -> int:
    shots_dir.mkdir(parents=True, exist_ok=True)
    problems = []
    driver = browser()
    try:
        for page in toc_pages():
            path = html_dir / f"{page}.html"
            if not path.exists():
                problems.append(f"{page}: {path} was not built")
                continue
            driver.get(path.resolve().as_uri())
            broken = driver.execute_script(BROKEN_IMAGES)
            images = driver.execute_script("return document.images.length;")
            tables = driver.execute_script("return document.querySelectorAll('table').length;")
            text = driver.execute_script("return document.body.innerText;")
            driver.save_screenshot(str(shots_dir / f"{Path(page).name}.png"))
            print(f"{page}: {images} images, {tables} tables, {len(text)} characters")
            if broken:
                problems.append(f"{page}: images did not load: {broken}")
            if page != toc_pages()[0] and page not in TEXT_PAGES and images == 0:
                problems.append(f"{page}: a chapter without a single figure")
            if "Traceback (most recent call last)" in text:
                problems.append(f"{page}: a notebook error was rendered")
            uncaptioned = driver.execute_script(UNCAPTIONED)
            if uncaptioned:
                problems.append(f"{page}: figures without a caption: {uncaptioned}")
            if page.startswith(METHOD_CHAPTERS) and driver.execute_script(EQUATIONS) == 0:
                problems.append(f"{page}: a method chapter without a rendered equation")
            for line in driver.execute_script(WIDE_OUTPUTS):
                problems.append(f"{page}: an output wider than the text column: {line!r}")
            for href in driver.execute_script(LINKS):
                problems += [f"{page}: {why}" for why in _bad_link(href, html_dir)]
    finally:
        driver.quit()
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
