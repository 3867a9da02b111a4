"""Settings, from the command line or environment variables prefixed DMP_FHIR_
(MONGODB_URI is also read unprefixed, as MongoDB tools do)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DMP_FHIR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    # base URL clients see (behind a proxy); default http://HOST:PORT/fhir
    public_base_url: str | None = None
    mongodb_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("DMP_FHIR_MONGODB_URI", "MONGODB_URI")
    )
    mongodb_db: str = "dmp"
    max_body_bytes: int = 20 * 1024 * 1024
    default_count: int = 50
    max_count: int = 1000
    workers: int = 1
    # "dev": local issuer, keys in data_dir (`dmp-fhir token` mints); "oidc": production
    # issuer (Pro Santé Connect...); "none": no authentication and no DMP policy, for
    # tests and trusted back-office use on loopback only (refused on other addresses)
    auth: Literal["dev", "oidc", "none"] = "dev"
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks: str | None = None  # path to a JWKS file, or its https URL
    # SQLite durability: FULL fsyncs each commit (survives power loss); NORMAL survives
    # a process crash only
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    log_level: str = "info"
    # one line per request (method, path, query parameter names, status, duration, actor)
    # on the `fhir_server.access` logger
    access_log: bool = True

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "dmp-fhir.sqlite3"

    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}/fhir"
