"""The release of every binsight distribution (core, device, server, training, demo).

Each folder's pyproject.toml states the same string (a test checks that they agree).
"""

__version__ = "0.1.0"
