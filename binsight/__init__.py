"""binsight: fill levels of waste containers from lid cameras, and truck routes planned from them.

The core package holds what every side shares: the MQTT wire protocol (:mod:`binsight.protocol`),
TOML config loading (:mod:`binsight.config`), secrets (:mod:`binsight.secrets`) and the ``binsight``
command (:mod:`binsight.cli`). It imports nothing heavier than pydantic, so a camera with only
``binsight[device]`` installed can run every ``binsight device`` command.
"""

__version__ = "0.1.0"
