"""The store the settings ask for: MongoDB when a URI is given, else embedded SQLite."""

from __future__ import annotations

from fhir_server.config import Settings
from fhir_server.storage.port import Store


def make_store(settings: Settings) -> Store:
    if settings.mongodb_uri:
        from fhir_server.storage.mongo import MongoStore  # type: ignore[import-not-found]

        return MongoStore(settings.mongodb_uri, settings.mongodb_db)
    from fhir_server.storage.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path, synchronous=settings.sqlite_synchronous)
