"""What every layer may use: settings, names, media types and the vocabulary of errors."""
