"""Exit codes of every normbench command: 0 ok, 1 a run failed or diverged, 2 the input was refused."""

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
