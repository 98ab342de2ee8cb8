"""The base of every section of the config file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A mapping of settings: unknown keys are errors (a typo must not pass silently), defaults are validated."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)
