"""Bytes on their way in: request bodies, resumable sessions, and the ingest pipeline."""
