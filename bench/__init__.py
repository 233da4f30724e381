"""The benchmark against nginx; run it with ``make bench`` (see README.md here)."""
