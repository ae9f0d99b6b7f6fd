"""Open the report's HTML pages in a real browser and check that a person can read them.

For every page (index.html and each task page), at a desktop and at a 390 px
phone viewport: every image decoded (``naturalWidth > 0``), the page does not
scroll sideways (``scrollWidth <= innerWidth``; wide tables scroll inside their
own box), and a full-page screenshot is saved beside the report
(``report/screenshots/<page>__<viewport>.png``).

The browser is Debian's Chromium (``apt-get install chromium``; the setup script
installs it) driven by playwright, pointed at the installed binary, so nothing
is downloaded; it runs headless, without a sandbox, background networking,
component updates or sync, with a fresh profile each time.

    python -m reports.browser runs/demo/report     # exit 1 when a check fails
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")
# name -> (width, height, phone): the phone honours the page's viewport meta tag like a real one
VIEWPORTS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
SCREENSHOT_DIR = "screenshots"
_MEASURE = """() => ({
  images: Array.from(document.images).map(i => ({alt: i.alt, naturalWidth: i.naturalWidth, complete: i.complete})),
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
})"""


class BrowserMissingError(RuntimeError):
    """Chromium or playwright is not installed; the message says how to get them."""


@dataclass(frozen=True)
class PageCheck:
    """What the browser saw of one page at one viewport."""

    page: str
    viewport: str
    images: int
    broken_images: tuple[str, ...]  # alt texts of images with naturalWidth 0
    scroll_width: int
    inner_width: int
    screenshot: Path

    @property
    def scrolls_sideways(self) -> bool:
        return self.scroll_width > self.inner_width

    @property
    def ok(self) -> bool:
        return not self.broken_images and not self.scrolls_sideways

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        broken = f", broken images: {', '.join(self.broken_images)}" if self.broken_images else ""
        return (f"{verdict}: {self.page} at {self.viewport}: {self.images} images{broken}, scrollWidth "
                f"{self.scroll_width} vs innerWidth {self.inner_width}; screenshot {self.screenshot}")


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserMissingError("playwright is not installed: run scripts/install_deps.sh "
                                  "(or pip install -r requirements.txt)") from None
    return sync_playwright


def check_report(report_dir: Path, executable: Path = CHROMIUM, viewports: dict = VIEWPORTS) -> list[PageCheck]:
    """Check every HTML page of `report_dir` at every viewport; screenshots go to report_dir/screenshots."""
    if not executable.is_file():
        raise BrowserMissingError(f"no Chromium at {executable}: install Debian's chromium "
                                  "(apt-get install chromium; scripts/install_deps.sh does it when run as root)")
    pages = sorted(report_dir.glob("*.html"), key=lambda p: (p.name != "index.html", p.name))
    if not pages:
        raise FileNotFoundError(f"no HTML pages in {report_dir}")
    shots = report_dir / SCREENSHOT_DIR
    shots.mkdir(exist_ok=True)
    checks = []
    with _playwright()() as playwright:
        for name, (width, height, phone) in viewports.items():
            # a fresh profile per viewport; a phone lays the page out at the width its viewport meta tag asks for
            with tempfile.TemporaryDirectory(prefix="normbench-chromium-") as profile:
                context = playwright.chromium.launch_persistent_context(
                    profile, executable_path=str(executable), headless=True, args=list(CHROMIUM_FLAGS),
                    viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone,
                    device_scale_factor=1, offline=True)
                try:
                    tab = context.pages[0] if context.pages else context.new_page()
                    for page in pages:
                        checks.append(_check_page(tab, page, name, shots))
                finally:
                    context.close()
    return checks


def _check_page(tab, page: Path, viewport: str, shots: Path) -> PageCheck:
    tab.goto(page.resolve().as_uri(), wait_until="load")
    seen = tab.evaluate(_MEASURE)
    shot = shots / f"{page.stem}__{viewport}.png"
    tab.screenshot(path=str(shot), full_page=True)
    broken = tuple(i["alt"] for i in seen["images"] if not i["naturalWidth"])
    return PageCheck(page.name, viewport, len(seen["images"]), broken, seen["scrollWidth"], seen["innerWidth"], shot)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m reports.browser REPORT_DIR", file=sys.stderr)
        return 2
    try:
        checks = check_report(Path(args[0]))
    except (BrowserMissingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for check in checks:
        print(check.describe())
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
