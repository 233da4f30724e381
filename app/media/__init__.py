"""Looking inside videos: what they hold, and the worker processes that run PyAV."""
