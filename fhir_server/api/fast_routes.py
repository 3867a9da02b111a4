"""The CDA filing route served before the framework's routing.

`POST /fhir/DocumentReference/$import-cda` is what laboratories and hospitals call
hundreds of times a second. FastAPI's routing, dependency solving and exception layers
cost each call more than this middleware does, for a route that takes no parameters: a few
per cent of a filing's server CPU (benchmarks/RESULTS.md). This ASGI middleware calls the same handler with
the same Request, and answers its errors through the same exception handlers
(`api.errors.HANDLERS`); every other request goes on to the application unchanged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from fhir_server.api.documents import import_cda_route
from fhir_server.api.errors import error_response


class FilingRoute:
    """`path`: where the application routes the same handler (its FHIR base + the route)."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await import_cda_route(request)
        except Exception as exc:
            response = await error_response(request, exc)
        await response(scope, receive, send)
