"""poolgate: one OpenAI- and Anthropic-compatible endpoint over many accounts of the same provider."""

__version__ = "0.1.0"
"""The one place the version is written: pyproject.toml reads it from here, ``poolgate --version`` prints it."""
