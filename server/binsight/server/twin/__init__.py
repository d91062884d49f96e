"""The city twin: a seeded simulation of bins, cameras and trucks that runs the server's own forecast and
planning code day by day, so that a collection policy's cost (truck-km) and service (overflows) are
measured numbers. ``binsight twin`` is its command; docs/twin.md explains the world and the figures.
"""

from binsight.server.twin.simulate import TwinConfig, run_policies

__all__ = ["TwinConfig", "run_policies"]
