"""The reporter: run records (result.json) in, tables, plots and a W&B report out.

Modules, in the order data flows through them:

- :mod:`reports.record`   what a record means: metric declarations, table axis, context
- :mod:`reports.schema`   validate schema 1 and 2 records; upgrade schema 1 on read
- :mod:`reports.collect`  find and load records; skip duplicates; list incomplete runs
- :mod:`reports.stats`    aggregate over seeds; Welch's t-test against BN; 95% intervals
- :mod:`reports.tables`   lay cells out as paper tables and decide what each cell shows
- :mod:`reports.render`   spell tables as Markdown, LaTeX, HTML and CSV
- :mod:`reports.plots`    metric vs the table axis, and BGN's metric vs G
- :mod:`reports.index`    index.md and a self-contained index.html
- :mod:`reports.wandb_report`  the W&B report (optional dependency wandb-workspaces)
- :mod:`reports.cli`      ``normbench report RUNS_DIR`` / ``python -m reports``

Nothing is imported here, so ``import reports`` stays cheap.
"""
