"""The retraining loop's server side: model registry, the "never ship a worse model" gate, signed
retained announcements, staged rollout (canary, then all) with automatic halt, rollback, drift watch
and coverage sampling. ``binsight.server.api.rollout`` is its HTTP face; nothing heavy is imported here.
"""
