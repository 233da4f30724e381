"""The kinds of media work, each run by the handler a worker registers for it (``app/services.py``)."""

DESCRIBE = "describe"
"""Probe the stored version of a video and make its poster (``Library.run_describe``)."""
FASTSTART = "faststart"
"""Move the index of a large MP4 upload to its front, then describe it (``IngestPipeline.faststart_stored``)."""
RENDITIONS = "renditions"
"""Make the web MP4 and the HLS ladder of a described version (``Renditions.run``)."""
