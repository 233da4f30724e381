"""What the service knows about its videos: metadata, posters, listings."""
