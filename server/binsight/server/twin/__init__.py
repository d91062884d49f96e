"""The city twin: a seeded simulation of bins, cameras and trucks that runs the server's own forecast and
planning code day by day, so that a collection policy's cost (truck-km) and service (overflows) are
measured numbers. ``binsight twin`` is its command; docs/twin.md explains the world and the figures.
The entry points are :func:`binsight.server.twin.simulate.run_policies` and ``TwinConfig`` there; this
``__init__`` imports nothing, so the CLI module stays light.
"""
