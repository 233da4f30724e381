"""Loaded by Schemathesis (``SCHEMATHESIS_HOOKS``): what it must know to send this API's requests.

tus chunks are raw bytes under their own media type, sent as application/octet-stream bodies are.
"""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
