"""The catalog: a database that mirrors the store, so that listings cost what a page holds.

The store stays the truth for bytes and sidecars; the catalog can always be
rebuilt from it (``python -m app reindex``).
"""
