"""Data errors whose message is the whole story: what was looked for, where, and how to get it."""


class DataError(RuntimeError):
    """Base class; the CLI prints the message of these without a traceback."""


class DataMissingError(DataError):
    pass


class DataCorruptError(DataError):
    pass
