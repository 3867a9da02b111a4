"""Who is calling: the bearer token verified once per request, and the access mode
headers. Only /metadata, /health and the API description are open."""

from __future__ import annotations

import ipaddress
import logging

from starlette.requests import Request

from fhir_server.auth.actor import AccessContext, Actor, access_context_from_headers
from fhir_server.auth.tokens import DevIssuer, TokenVerifier
from fhir_server.config import Settings

log = logging.getLogger("fhir_server.security")


def build_verifier(settings: Settings) -> TokenVerifier | None:
    if settings.auth == "none":
        if not _loopback(settings.host):
            raise SystemExit("auth=none is for loopback only: refusing to serve " + settings.host)
        log.warning("authentication is OFF (auth=none): trusted local use only")
        return None
    if settings.auth == "oidc":
        if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks):
            raise SystemExit("auth=oidc needs oidc_issuer, oidc_audience and oidc_jwks")
        return TokenVerifier.oidc(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks)
    return DevIssuer.load_or_create(settings.data_dir).verifier()


def _loopback(host: str) -> bool:
    if host in ("localhost", "testserver"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authenticate(request: Request) -> tuple[Actor | None, AccessContext]:
    """The verified actor (None when auth is off) and the declared access mode; whether
    that mode is allowed is the policy's call, made with the record in view. The actor is
    left on `request.state` for the access log."""
    verifier: TokenVerifier | None = request.app.state.verifier
    if verifier is None:
        return None, AccessContext()
    actor = request.state.actor = verifier.verify(request.headers.get("authorization"))
    return actor, access_context_from_headers(request.headers, actor, strict=False)
