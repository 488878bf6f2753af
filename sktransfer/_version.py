"""The package version, at the bottom layer so every module can read it."""

__version__ = "0.1.0"
