"""The ASGI application: store lifecycle, routes, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fhir_server import __version__
from fhir_server.api import errors as api_errors
from fhir_server.api import openapi
from fhir_server.api.capability import capability_statement
from fhir_server.api.responses import fhir_response
from fhir_server.api.rest import bundle_route, router
from fhir_server.config import Settings
from fhir_server.interactions.context import Context
from fhir_server.storage.port import Store


def make_store(settings: Settings) -> Store:
    if settings.mongodb_uri:
        from fhir_server.storage.mongo import MongoStore  # type: ignore[import-not-found]

        return MongoStore(settings.mongodb_uri, settings.mongodb_db)
    from fhir_server.storage.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    store = store or make_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="DMP FHIR server",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.ctx = Context(store, settings)
    api_errors.install(app)
    openapi.install(app)

    @app.get("/health")
    async def health() -> Response:
        ok = await store.ping()
        return JSONResponse(
            {
                "status": "ok" if ok else "unavailable",
                "store": type(store).__name__,
                "reachable": ok,
            },
            status_code=200 if ok else 503,
        )

    @app.get("/fhir/metadata")
    async def metadata(request: Request) -> Response:
        return fhir_response(request, capability_statement(settings.base_url()))

    app.add_api_route("/fhir", bundle_route, methods=["POST"])
    app.add_api_route("/fhir/", bundle_route, methods=["POST"])
    app.include_router(router, prefix="/fhir")
    return app
