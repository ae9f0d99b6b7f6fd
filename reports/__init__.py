"""The reporter: run records (result.json) in, tables, plots and a W&B report out.

Modules, in the order data flows through them:

- :mod:`reports.collect`  find, validate and load records; list incomplete runs
- :mod:`reports.stats`    aggregate over seeds; Welch's t-test against BN
- :mod:`reports.tables`   lay cells out as paper tables and decide what each cell shows
- :mod:`reports.render`   spell tables as Markdown, LaTeX, HTML and CSV
- :mod:`reports.plots`    metric vs batch size, and BGN's metric vs G
- :mod:`reports.index`    index.md and a self-contained index.html
- :mod:`reports.wandb_report`  the W&B report (optional dependency wandb-workspaces)
- :mod:`reports.cli`      ``normbench report RUNS_DIR`` / ``python -m reports``

Nothing is imported here, so ``import reports`` stays cheap.
"""
