"""The server: ingest readings, store them, track devices, forecast fill, plan routes, serve the web page."""
