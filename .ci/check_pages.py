"""Open every page of the built book in headless Chromium and check it renders.

For each HTML page listed by the table of contents: take a screenshot, check that every
<img> loaded (complete with a natural width), that chapter pages carry at least one
figure, and that no notebook error (a Traceback) was rendered. Exits 1 on any problem.

usage: python .ci/check_pages.py _build/html _build/screenshots
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[1]
BROKEN_IMAGES = """return Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src);"""


def toc_pages() -> list[str]:
    """The pages in _toc.yml, in order ("book/intro", "book/metrics", ...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [chapter["file"] for chapter in toc.get("chapters", [])]


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
            if page != toc_pages()[0] and images == 0:
                problems.append(f"{page}: a chapter without a single figure")
            if "Traceback (most recent call last)" in text:
                problems.append(f"{page}: a notebook error was rendered")
    finally:
        driver.quit()
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
