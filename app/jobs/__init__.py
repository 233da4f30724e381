"""Durable jobs: media work recorded in the catalog's database, claimed under a lease, retried, never lost."""
