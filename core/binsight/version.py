"""The release of every binsight distribution (core, device, server, training, demo).

``binsight`` is a namespace package (PEP 420) with one portion per top-level folder, so it has no
``__init__``: the version lives here, and each folder's pyproject.toml states the same string (a test
checks that they agree).
"""

__version__ = "0.1.0"
