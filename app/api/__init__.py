"""The HTTP API: routes, the error table, authentication, the JSON models."""
