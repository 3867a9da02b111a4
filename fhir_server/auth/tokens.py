"""Bearer-token verification (PyJWT) and the local development issuer.

Two configurations, one verifier:

- **dev**: `DevIssuer.load_or_create(data_dir)` generates an RSA-2048 key pair once into
  `<data_dir>/dev-issuer-key.pem` (mode 0600, created atomically, reused on restart) and
  mints RS256 tokens (`dmp-fhir token`); `TokenVerifier.dev(issuer)` verifies them. RSA
  rather than P-256 because RSA verification (public exponent 65537) is the faster of the
  two (benchmarks/RESULTS.md).
- **oidc**: `TokenVerifier.oidc(issuer, audience, jwks)` where `jwks` is a file path (read
  once) or an https URL (`jwt.PyJWKClient`, which caches the key set, not verdicts).

`verify(authorization_header) -> Actor` raises `unauthorized` (401 + WWW-Authenticate) for a
missing, malformed, expired, not-yet-valid, badly signed, wrong-audience, wrong-issuer or
`alg: none` token, and `forbidden` (403) for a verified token whose role is not allowed.
Only the algorithms listed here are ever accepted: HS* (a public key used as an HMAC
secret) and `none` can never pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_server.auth.actor import (
    ESTABLISHMENT_ROLES,
    PATIENT_BOUND_ROLES,
    PROFESSIONAL_ROLES,
    Actor,
)
from fhir_server.errors import FhirError, forbidden, unauthorized, unavailable

DEV_ISSUER = "urn:dmp-fhir:dev-issuer"
DEFAULT_AUDIENCE = "dmp-fhir"
DEV_ALGORITHM = "RS256"
DEV_KEY_FILE = "dev-issuer-key.pem"
OIDC_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256")
DEFAULT_LEEWAY_SECONDS = 30
# distinct tokens whose verification is remembered (least recently verified dropped)
VERIFIED_CACHE_SIZE = 4096
MAX_DEV_TTL_SECONDS = 7 * 24 * 3600

# An algorithm is only ever paired with its own key type (no RSA key fed to an EC check).
_KEY_TYPES: Mapping[str, tuple[type, ...]] = {
    "RS256": (rsa.RSAPublicKey,),
    "PS256": (rsa.RSAPublicKey,),
    "ES256": (ec.EllipticCurvePublicKey,),
}
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


# --------------------------------------------------------------------------- claims


def claims_to_actor(claims: Mapping[str, Any]) -> Actor:
    """Map verified claims to an Actor; ValueError when a claim is missing or mistyped.

    A role outside the list is returned as-is (the verifier answers 403 for it, after the
    signature has been checked), so that such a token can still be minted for a demo.
    """
    values: dict[str, str | None] = {}
    for name in ("role", "sub", "rpps", "profession", "organization", "patient"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"claim {name!r} must be a non-empty string")
        values[name] = value
    role, sub = values["role"], values["sub"]
    if role is None or sub is None:
        raise ValueError("claims 'role' and 'sub' are required")
    profession = values["profession"] or "10"
    if not (profession.isdigit() and len(profession) <= 4):
        raise ValueError("claim 'profession' must be a G15 profession code (digits)")
    for roles, claim in (
        (PROFESSIONAL_ROLES, "rpps"),
        (PATIENT_BOUND_ROLES, "patient"),
        (ESTABLISHMENT_ROLES, "organization"),
    ):
        if role in roles and values[claim] is None:
            raise ValueError(f"role {role!r} requires claim {claim!r}")
    return Actor(
        role=role,
        sub=sub,
        rpps=values["rpps"],
        profession=profession,
        organization=values["organization"],
        patient=values["patient"],
    )


def _invalid_token(message: str) -> FhirError:
    err = unauthorized(message)
    # RFC 6750 §3: say the token (not the request) is at fault; fixed text, no quoting risk.
    err.headers["WWW-Authenticate"] = 'Bearer realm="dmp-fhir", error="invalid_token"'
    return err


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise unauthorized("a bearer token is required (Authorization: Bearer <jwt>)")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _invalid_token("the Authorization header must be 'Bearer <jwt>'")
    return token


# --------------------------------------------------------------------------- verifier

KeyResolver = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class TokenVerifier:
    """Verifies bearer tokens. Keys are loaded once (constructor) and kept as objects, so a
    verification is one signature check plus claim checks (see tests for the timing)."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    resolve_key: KeyResolver
    leeway: int = DEFAULT_LEEWAY_SECONDS
    # With a single known key the header need not be parsed twice (PyJWT itself refuses
    # any alg outside `algorithms`, `none` included): this halves the parsing cost.
    single_key: Any = None
    # tokens already verified, until they expire: a client sends the same token with every
    # request, and checking its RSA signature again cost a tenth of a filing
    _verified: OrderedDict[str, tuple[Actor, float, float]] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )

    @classmethod
    def dev(cls, issuer: DevIssuer) -> TokenVerifier:
        public_key = issuer.private_key.public_key()
        return cls(
            issuer=issuer.issuer,
            audience=issuer.audience,
            algorithms=(DEV_ALGORITHM,),
            resolve_key=lambda _header: public_key,
            single_key=public_key,
        )

    @classmethod
    def oidc(
        cls,
        issuer: str,
        audience: str,
        jwks: str | Path,
        algorithms: tuple[str, ...] = OIDC_ALGORITHMS,
        leeway: int = DEFAULT_LEEWAY_SECONDS,
    ) -> TokenVerifier:
        unknown = set(algorithms) - set(_KEY_TYPES)
        if unknown or not algorithms:
            raise ValueError(f"unsupported algorithms {sorted(unknown)}; allowed {_KEY_TYPES}")
        source = str(jwks)
        resolver = (
            _url_jwks_resolver(source)
            if source.startswith(("https://", "http://"))
            else _file_jwks_resolver(Path(source))
        )
        return cls(issuer, audience, tuple(algorithms), resolver, leeway)

    def verify(self, authorization: str | None) -> Actor:
        token = _bearer(authorization)
        known = self._verified.get(token)
        if known is not None:
            actor, not_before, expires = known
            now = time.time()
            if not_before - self.leeway <= now < expires + self.leeway:
                return actor
            del self._verified[token]  # expired: verified again below, and refused
        return self._verify(token)

    def _remember(self, token: str, actor: Actor, claims: dict[str, Any]) -> None:
        start = max(float(claims.get("nbf") or 0), float(claims.get("iat") or 0))
        self._verified[token] = (actor, start, float(claims["exp"]))
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)

    def _verify(self, token: str) -> Actor:
        key, algorithms = (
            (self.single_key, list(self.algorithms))
            if self.single_key is not None
            else self._key_for(token)
        )
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid_token("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise _invalid_token("the bearer token is not issued for this server") from None
        except jwt.InvalidIssuerError:
            raise _invalid_token("the bearer token comes from an unknown issuer") from None
        except jwt.InvalidSignatureError:
            raise _invalid_token("the bearer token signature is invalid") from None
        except jwt.PyJWTError as exc:
            raise _invalid_token(f"the bearer token is invalid: {exc}") from None
        try:
            actor = claims_to_actor(claims)
        except ValueError as exc:
            raise _invalid_token(f"the bearer token is invalid: {exc}") from None
        if not actor.role_allowed:
            raise forbidden(f"role {actor.role!r} may not access the DMP (L.1111-18)")
        self._remember(token, actor, claims)
        return actor

    def _key_for(self, token: str) -> tuple[Any, list[str]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid_token("the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        # Refuse before touching any key: `none`, HS* and anything unlisted.
        if alg not in self.algorithms:
            raise _invalid_token(f"token algorithm {alg!r} is not accepted")
        key = self.resolve_key(header)
        if not isinstance(key, _KEY_TYPES[alg]):
            raise _invalid_token("token algorithm does not match the signing key type")
        return key, [alg]


def _check_jwk(jwk: jwt.PyJWK, header: Mapping[str, Any]) -> Any:
    # PyJWK keeps the JWK members only privately; `algorithm_name` alone cannot tell a
    # pinned "alg" from a default guessed from the key type.
    data: Mapping[str, Any] = getattr(jwk, "_jwk_data", {})
    # A JWK that pins its algorithm may only verify that algorithm.
    if data.get("alg") and data["alg"] != header.get("alg"):
        raise _invalid_token("token algorithm does not match the key's algorithm")
    if data.get("use") not in (None, "sig"):
        raise _invalid_token("the matching key is not a signature key")
    return jwk.key


def _file_jwks_resolver(path: Path) -> KeyResolver:
    data = json.loads(path.read_text(encoding="utf-8"))
    keys = list(jwt.PyJWKSet.from_dict(data).keys)
    by_kid = {k.key_id: k for k in keys if k.key_id}

    def resolve(header: Mapping[str, Any]) -> Any:
        kid = header.get("kid")
        if kid is None and len(keys) == 1:
            return _check_jwk(keys[0], header)
        jwk = by_kid.get(kid) if isinstance(kid, str) else None
        if jwk is None:
            raise _invalid_token("the bearer token is signed by an unknown key")
        return _check_jwk(jwk, header)

    return resolve


def _url_jwks_resolver(url: str) -> KeyResolver:
    client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)

    def resolve(header: Mapping[str, Any]) -> Any:
        kid = header.get("kid")
        try:
            jwk = (
                client.get_signing_key(kid)
                if isinstance(kid, str)
                else client.get_signing_keys()[0]
            )
        except jwt.PyJWKClientConnectionError:
            raise unavailable("the identity provider's key set cannot be fetched") from None
        except jwt.PyJWKClientError:
            raise _invalid_token("the bearer token is signed by an unknown key") from None
        return _check_jwk(jwk, header)

    return resolve


# --------------------------------------------------------------------------- dev issuer


def _load_private_key(path: Path) -> rsa.RSAPrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(
            f"{path} is readable by others (mode {mode:o}); run chmod 600 {path} "
            "or delete it to generate a new key"
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError(f"{path} does not hold an RSA (>= 2048 bits) private key")
    return key


def _create_private_key(path: Path) -> rsa.RSAPrivateKey:
    """Write a new key atomically: a 0600 temp file hard-linked into place, so a concurrent
    starter either wins or reads the complete key of the winner, never a partial file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load_private_key(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


@dataclass(frozen=True)
class DevIssuer:
    """The local development token issuer (never for production: anyone with the data
    directory can mint any role)."""

    private_key: rsa.RSAPrivateKey
    issuer: str = DEV_ISSUER
    audience: str = DEFAULT_AUDIENCE

    @classmethod
    def load_or_create(
        cls, data_dir: str | Path, issuer: str = DEV_ISSUER, audience: str = DEFAULT_AUDIENCE
    ) -> DevIssuer:
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / DEV_KEY_FILE
        key = _load_private_key(path) if path.exists() else _create_private_key(path)
        return cls(key, issuer, audience)

    @classmethod
    def load(
        cls, data_dir: str | Path, issuer: str = DEV_ISSUER, audience: str = DEFAULT_AUDIENCE
    ) -> DevIssuer:
        """The issuer whose key is in `data_dir`; FileNotFoundError when there is none
        (nothing is created: a new key would sign tokens the server refuses)."""
        return cls(_load_private_key(Path(data_dir) / DEV_KEY_FILE), issuer, audience)

    @property
    def key_id(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()[:16]

    def verifier(self) -> TokenVerifier:
        return TokenVerifier.dev(self)

    def mint_token(
        self,
        role: str,
        sub: str,
        rpps: str | None = None,
        profession: str | None = None,
        organization: str | None = None,
        patient: str | None = None,
        ttl: int = 3600,
        *,
        now: float | None = None,
    ) -> str:
        """A signed RS256 token; ValueError for a claim set the verifier would refuse as
        malformed (a role outside the list can be minted: it is refused with 403)."""
        if not 0 < ttl <= MAX_DEV_TTL_SECONDS:
            raise ValueError(f"ttl must be between 1 and {MAX_DEV_TTL_SECONDS} seconds")
        issued = int(time.time() if now is None else now)
        optional = {
            "rpps": rpps,
            "profession": profession,
            "organization": organization,
            "patient": patient,
        }
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "role": role,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": secrets.token_urlsafe(12),
            **{k: v for k, v in optional.items() if v is not None},
        }
        claims_to_actor(claims)
        return jwt.encode(
            claims, self.private_key, algorithm=DEV_ALGORITHM, headers={"kid": self.key_id}
        )
