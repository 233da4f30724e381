"""Where videos and their sidecars live: the ``Store`` protocol, a local directory, an S3 bucket."""
