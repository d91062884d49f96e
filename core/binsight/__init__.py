"""binsight: the core package, and the one namespace every part adds a sub-package to.

The core (this folder) owns the name ``binsight``; each part's distribution adds its sub-package
from its own folder (``device/binsight/device/``, ``server/binsight/server/``, ...). The line below
gathers those folders into this package's ``__path__``, so ``binsight.device`` is found wherever
binsight-device is installed (docs/layout.md). Nothing else belongs here: importing ``binsight``
must stay as light as the camera's smallest install.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
