"""normbench: the project's namespace, and the few helpers the run side and the reporter share.

The design keeps ``tasks`` (runs) and ``reports`` (tables) from importing each
other: the reporter reads run records only. What both must agree on without
sharing code paths lives here, dependency-free: how names become file names,
the paper's task order, and how W&B credentials are found.
``python -m normbench ...`` is the ``normbench`` command.
"""

__all__ = ["__version__"]
__version__ = "0.2.0"
