"""The ASGI application: store lifecycle, routes, error mapping."""

from __future__ import annotations

import gc
import inspect
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fhir_server import __version__
from fhir_server.api import documents, openapi, record_routes
from fhir_server.api import errors as api_errors
from fhir_server.api.access_log import AccessLog
from fhir_server.api.capability import capability_statement
from fhir_server.api.fast_routes import FilingRoute
from fhir_server.api.responses import fhir_response
from fhir_server.api.rest import bundle_route, router
from fhir_server.api.security import build_verifier
from fhir_server.audit.events import ServerIdentity
from fhir_server.config import Settings
from fhir_server.interactions.context import Context
from fhir_server.operations.reindex import reindex_if_stale
from fhir_server.operations.restamp_replaced import restamp_replaced_once
from fhir_server.operations.tie_contents import tie_contents_once
from fhir_server.storage.factory import make_store
from fhir_server.storage.port import Store

# where the FHIR API is served (the capability statement and every interaction)
FHIR_BASE = "/fhir"
# where the API pages' scripts and styles are served
DOCS_ASSETS = "/docs/assets"
SWITCH_INTERVAL_S = 0.0005
GC_YOUNG_THRESHOLD = 20_000


# FastAPI's built-in OpenTelemetry hooks (recent releases) look up the global providers on
# every request; this server exports no telemetry, so they are switched off
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    # the store's threads (SQLite writer, readers) hand results back to the event loop
    # many times per request: a 5 ms GIL switch interval makes each hand-over wait
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    store = store or make_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        # resources indexed by another version are found by today's parameters
        await reindex_if_stale(store)
        # contents filed by an earlier version without their document's name
        await tie_contents_once(store)
        # data of documents replaced before their status was a fact of it
        await restamp_replaced_once(store)
        # what start-up built (app, models, tables) lives as long as the process: out of
        # the garbage collector's sight, a full collection has less to walk per request
        gc.freeze()
        # young collections at the default threshold (700) cost ~0.03 ms per filing
        # (measured with gc.callbacks); at 20,000 they nearly stop
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        try:
            yield
        finally:
            await store.close()

    # the API pages (Swagger UI at /docs, ReDoc at /redoc) load their scripts and styles
    # from this server, not from a CDN: hospital networks often have no internet
    app = FastAPIOffline(
        title="DMP FHIR server",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        static_url=DOCS_ASSETS,
        # no call to the public spec validator either
        swagger_ui_parameters={"validatorUrl": None},
        openapi_url="/openapi.json",
        **_NO_TELEMETRY,
    )
    app.state.ctx = Context(store, settings, server=ServerIdentity(base_url=settings.base_url()))
    app.state.verifier = build_verifier(settings)
    api_errors.install(app)
    # the hottest route, served before the framework's routing (same handler, same path)
    app.add_middleware(FilingRoute, path=FHIR_BASE + documents.IMPORT_CDA_PATH)
    if settings.access_log:  # added last, so outermost: it times every route
        app.add_middleware(AccessLog)
    openapi.install(app, bearer=settings.auth != "none")

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

    @app.get(FHIR_BASE + "/metadata")
    async def metadata(request: Request) -> Response:
        return fhir_response(request, capability_statement(settings.base_url(), auth=settings.auth))

    app.add_api_route(FHIR_BASE, bundle_route, methods=["POST"])
    app.add_api_route(FHIR_BASE + "/", bundle_route, methods=["POST"])
    app.include_router(documents.router, prefix=FHIR_BASE)  # before the generic /{type}/{id}
    app.include_router(record_routes.router, prefix=FHIR_BASE)
    app.include_router(router, prefix=FHIR_BASE)
    return app
