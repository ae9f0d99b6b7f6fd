"""A CSV logger that keeps the metrics of earlier attempts when a run resumes.

Lightning's CSVLogger deletes an existing metrics.csv when it starts, which would
erase the first part of a resumed run's curves. This one appends instead, and
widens the header when later attempts log new columns.
"""

from __future__ import annotations

import csv
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, file_name: str) -> None:
        self.NAME_METRICS_FILE = file_name
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:  # keep what is there
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as fh:
                header = next(csv.reader(fh), [])
            self.metrics_keys = list(header)


class ResumableCSVLogger(CSVLogger):
    """``metrics.csv`` (or ``file_name``) directly in ``save_dir``, appended to across attempts."""

    def __init__(self, save_dir: str, file_name: str = "metrics.csv") -> None:
        super().__init__(save_dir=save_dir, name="", version="")
        self.file_name = file_name

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(self.log_dir, self.file_name)
        return self._experiment
