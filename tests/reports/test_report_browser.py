"""The HTML report in a real browser (Debian's Chromium via playwright): desktop and a 390 px phone.

Not skipped when the browser is missing: scripts/install_deps.sh installs playwright (requirements.txt)
and, as root on Debian, the chromium package, so a missing browser is a setup error to fix.
"""

from __future__ import annotations

import matplotlib.image as mpimg

from reports.browser import CHROMIUM, SCREENSHOT_DIR, check_report

PAGES = ["index.html", "task-adversarial.html", "task-classification.html", "task-fewshot.html", "task-nas.html",
         "task-uda.html"]


def test_every_page_reads_on_a_desktop_and_a_phone(five_task_report) -> None:
    assert CHROMIUM.is_file(), (f"{CHROMIUM} is missing: run scripts/install_deps.sh as root "
                                "(it installs Debian's chromium), or apt-get install chromium")
    checks = check_report(five_task_report.out)
    assert [(c.page, c.viewport) for c in checks] == [(p, v) for v in ("desktop", "phone") for p in PAGES]
    for check in checks:
        assert check.ok, check.describe()  # every image decoded, nothing wider than the window
        assert check.inner_width == (1280 if check.viewport == "desktop" else 390), check.describe()
    images = {(c.page, c.viewport): c.images for c in checks}
    assert images[("task-nas.html", "phone")] == 9 and images[("task-adversarial.html", "desktop")] == 5
    # screenshots beside the report, at the viewport's width
    for check in checks:
        assert check.screenshot.parent == five_task_report.out / SCREENSHOT_DIR
        shot = mpimg.imread(check.screenshot)
        assert shot.shape[1] == check.inner_width and shot.shape[0] >= 600 and shot.std() > 0.01
