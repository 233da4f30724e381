"""The web pages people use: server-rendered templates and small scripts."""
