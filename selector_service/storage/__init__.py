"""Persistence: the only package that speaks SQL."""

from selector_service.storage.core_engine import UnusableDatabase
from selector_service.storage.database import database_url
from selector_service.storage.repository import StateRepository

__all__ = ["StateRepository", "UnusableDatabase", "database_url"]
