"""The reporter: run records (result.json) in, tables, plots and a W&B report out.

Modules, in the order data flows through them:

- :mod:`reports.record`   what a record means: metric declarations, table axis, context
- :mod:`reports.schema`   validate schema 1 and 2 records; upgrade schema 1 on read
- :mod:`reports.collect`  find and load records; skip duplicates; list incomplete runs
- :mod:`reports.keys`     which comparison-key settings tell two tables apart (captions, refusals)
- :mod:`reports.outcomes` per-item outcome files (outcomes.json; old few-shot episode files), for pairing
- :mod:`reports.episodes` the old per-episode accuracy files of few-shot records
- :mod:`reports.compare`  the test against the reference: bootstrap, paired t, Welch; difference and 95% CI
- :mod:`reports.stats`    aggregate over seeds; the comparison with the reference; 95% intervals
- :mod:`reports.family`   Holm over declared families (the table, or the sweep's hypotheses)
- :mod:`reports.contrasts`  difference-in-differences across the table axis, for declared pairs
- :mod:`reports.tables`   lay cells out as paper tables and decide what each cell shows
- :mod:`reports.render`   spell tables as Markdown, LaTeX, HTML and CSV
- :mod:`reports.summary_spec`  the declared cross-task summary columns, resolved against the runs
- :mod:`reports.summary`  the cross-task summary: cells, tests, ranks
- :mod:`reports.summary_render`  the summary in Markdown, LaTeX, HTML and CSV
- :mod:`reports.plots`    metric vs the table axis, and BGN's metric vs G
- :mod:`reports.task_plots`  clean vs robust, per-norm CI bars, per-pair bars
- :mod:`reports.cells`    NAS cells drawn from the genotype in the records
- :mod:`reports.index`    index.md, and the files and notes the pages show
- :mod:`reports.html_pages`  index.html and a page per task, self-contained and phone-ready
- :mod:`reports.browser`  check the pages in Chromium (playwright) and save screenshots
- :mod:`reports.wandb_report`  the W&B report (optional dependency wandb-workspaces)
- :mod:`reports.cli`      ``normbench report RUNS_DIR`` / ``python -m reports``

Nothing is imported here, so ``import reports`` stays cheap.
"""
