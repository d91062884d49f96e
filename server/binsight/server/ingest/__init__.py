"""MQTT ingest: validate every message, write in batches, acknowledge only what is committed."""
