"""The HTTP API (FastAPI) for systems that embed opcatflow without importing Python."""
