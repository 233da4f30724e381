"""Running the service: ``python -m app serve``, uvicorn with the limits of ``app.server.protocol``."""
