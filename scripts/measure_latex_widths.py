"""Compile each report table in a 6.5 in article with pdflatex and print its natural width.

Why: the test suite checks table widths with an estimate (tests/reports/test_report_layout.py, no TeX
needed); this script is the ground truth behind that estimate. Needs pdflatex with booktabs and geometry
(Debian: ``apt-get install texlive-latex-base texlive-latex-recommended``).

    python scripts/measure_latex_widths.py runs/demo/report/summary.tex runs/demo/report/tables/t*.tex
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

TEXT_WIDTH_PT = 469.75  # 6.5 in


def measure(table: Path, workdir: Path) -> str:
    src = table.read_text()
    size = re.search(r"\\(small|footnotesize)\b", src)
    sep = re.search(r"\\setlength\{\\tabcolsep\}\{[^}]*\}", src)
    tabular = src[src.index("\\begin{tabular}{"):src.rindex("\\end{tabular}") + len("\\end{tabular}")]
    box = f"{size.group(0) if size else ''}{sep.group(0) if sep else ''}{tabular}"
    doc = ("\\documentclass{article}\\usepackage[textwidth=6.5in]{geometry}\\usepackage{booktabs}"
           "\\usepackage[T1]{fontenc}\\begin{document}\n" + src +
           f"\n\\newsavebox\\tb\\sbox\\tb{{{box}}}\\typeout{{WIDTH=\\the\\wd\\tb}}\n\\end{{document}}\n")
    (workdir / "t.tex").write_text(doc)
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=workdir, capture_output=True,
                         text=True).stdout
    width = re.search(r"WIDTH=([\d.]+)pt", out)
    overfull = len(re.findall(r"Overfull \\hbox", out))
    errors = re.findall(r"^! .*", out, re.M)
    shown = f"{float(width.group(1)):.0f} pt" if width else "?"
    return f"{table.name}: {shown} of {TEXT_WIDTH_PT} pt; overfull boxes {overfull}; errors {errors[:2]}"


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            print(measure(Path(path), Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
