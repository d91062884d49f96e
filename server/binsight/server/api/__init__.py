"""The HTTP API (docs/contracts.md, "Server runtime and API"), one router per resource."""
