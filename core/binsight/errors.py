"""Exceptions shared across binsight. Each names the thing that is wrong."""


class BinsightError(Exception):
    """Base class: an error the CLI reports as one line and exit status 1, without a traceback."""


class ConfigError(BinsightError):
    """A config file is missing, unreadable, or has a bad or unknown key."""


class DataError(BinsightError):
    """Input data (a labelled set, an instance file, an import file) is malformed; names file and row."""
