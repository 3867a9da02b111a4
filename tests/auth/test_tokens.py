"""Bearer-token verification: every way a token can be wrong, and the dev key on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_server.auth.actor import Actor
from fhir_server.auth.tokens import DEV_KEY_FILE, DevIssuer, TokenVerifier
from fhir_server.errors import FhirError


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def verifier(issuer: DevIssuer) -> TokenVerifier:
    return issuer.verifier()


def status_of(verifier: TokenVerifier, header: str | None) -> tuple[int, dict[str, str]]:
    with pytest.raises(FhirError) as err:
        verifier.verify(header)
    return err.value.status, err.value.headers


def test_valid_token(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.mint_token(
        "practitioner", "dr-who", rpps="10000000001", organization="750000001"
    )
    assert verifier.verify(f"Bearer {token}") == Actor(
        "practitioner", "dr-who", rpps="10000000001", profession="10", organization="750000001"
    )
    token = issuer.mint_token("patient", "alice", patient="p1")
    assert verifier.verify(f"bearer {token}").patient == "p1"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer a.b", "Bearer x y"])
def test_missing_or_malformed(verifier: TokenVerifier, header: str | None) -> None:
    status, headers = status_of(verifier, header)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")


def test_expired(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.mint_token("patient", "alice", patient="p1", ttl=60, now=time.time() - 3600)
    status, headers = status_of(verifier, f"Bearer {token}")
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]


def test_wrong_signature(tmp_path: Path, verifier: TokenVerifier) -> None:
    impostor = DevIssuer.load_or_create(tmp_path)  # same issuer name, another key
    token = impostor.mint_token("patient", "alice", patient="p1")
    assert status_of(verifier, f"Bearer {token}")[0] == 401


def test_tampered_claims(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    header, payload, signature = issuer.mint_token("patient", "a", patient="p1").split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["role"] = "practitioner"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert status_of(verifier, f"Bearer {header}.{forged}.{signature}")[0] == 401


def test_wrong_audience_and_issuer(tmp_path: Path, issuer: DevIssuer) -> None:
    other_aud = DevIssuer(issuer.private_key, issuer.issuer, "another-server")
    token = other_aud.mint_token("patient", "a", patient="p1")
    assert status_of(issuer.verifier(), f"Bearer {token}")[0] == 401
    other_iss = DevIssuer(issuer.private_key, "https://evil.example", issuer.audience)
    token = other_iss.mint_token("patient", "a", patient="p1")
    assert status_of(issuer.verifier(), f"Bearer {token}")[0] == 401


def test_alg_none_refused(verifier: TokenVerifier, issuer: DevIssuer) -> None:
    now = int(time.time())
    claims = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "x",
        "role": "practitioner",
        "rpps": "1",
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(claims, key=None, algorithm="none")
    assert status_of(verifier, f"Bearer {token}")[0] == 401


def test_hmac_with_public_key_refused(verifier: TokenVerifier, issuer: DevIssuer) -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the (public) verification key.
    pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "x", "role": "auditor"}
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(
        json.dumps({**claims, "iat": now, "exp": now + 60}).encode()
    ).decode()
    sig = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{jwt.utils.base64url_encode(sig).decode()}"
    assert status_of(verifier, f"Bearer {token}")[0] == 401


def test_unknown_role_is_403(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.mint_token("insurer", "axa")
    assert status_of(verifier, f"Bearer {token}")[0] == 403


def test_missing_required_claim_is_401(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    with pytest.raises(ValueError):
        issuer.mint_token("practitioner", "dr")  # no rpps
    now = int(time.time())
    token = jwt.encode(
        {"iss": issuer.issuer, "aud": issuer.audience, "sub": "dr", "role": "practitioner",
         "iat": now, "exp": now + 60},
        issuer.private_key,
        algorithm="RS256",
    )  # fmt: skip
    assert status_of(verifier, f"Bearer {token}")[0] == 401


def test_key_persisted_with_0600_and_reused(tmp_path: Path) -> None:
    first = DevIssuer.load_or_create(tmp_path)
    path = tmp_path / DEV_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = first.mint_token("patient", "a", patient="p1")
    second = DevIssuer.load_or_create(tmp_path)  # a restart
    assert second.key_id == first.key_id
    assert second.verifier().verify(f"Bearer {token}").sub == "a"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_key_readable_by_others_refused(tmp_path: Path) -> None:
    DevIssuer.load_or_create(tmp_path)
    os.chmod(tmp_path / DEV_KEY_FILE, 0o644)
    with pytest.raises(PermissionError):
        DevIssuer.load_or_create(tmp_path)


def test_a_remembered_token_still_expires(issuer: DevIssuer) -> None:
    # verifications are remembered (no second RSA check for the same token): the
    # remembered answer must end when the token does
    verifier = dataclasses.replace(issuer.verifier(), leeway=0)
    token = issuer.mint_token("practitioner", "dr", rpps="10000000001", ttl=1)
    header = f"Bearer {token}"
    assert verifier.verify(header).sub == "dr"
    assert verifier.verify(header).sub == "dr"  # answered from memory
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(FhirError) as err:
        verifier.verify(header)
    assert err.value.status == 401 and "expired" in str(err.value.issues[0].diagnostics)


def test_a_forged_twin_of_a_remembered_token_is_refused(
    issuer: DevIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.mint_token("practitioner", "dr", rpps="10000000001")
    verifier.verify(f"Bearer {token}")
    head, body, signature = token.split(".")
    forged = ".".join(
        [head, body, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )
    assert status_of(verifier, f"Bearer {forged}")[0] == 401


# -- OIDC with a JWKS file -------------------------------------------------------------


def _jwk(public_key, kid: str, alg: str) -> dict:
    data = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(public_key))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(
        json.dumps(
            {
                "keys": [
                    _jwk(rsa_key.public_key(), "r1", "RS256"),
                    _jwk(ec_key.public_key(), "e1", "ES256"),
                ]
            }
        )
    )
    verifier = TokenVerifier.oidc("https://psc.example", "dmp-fhir", path)
    return rsa_key, ec_key, verifier


def _oidc_token(key, alg: str, kid: str, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://psc.example",
        "aud": "dmp-fhir",
        "sub": "dr",
        "role": "practitioner",
        "rpps": "10000000001",
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def test_oidc_rsa_and_ec_keys(idp) -> None:
    rsa_key, ec_key, verifier = idp
    assert verifier.verify("Bearer " + _oidc_token(rsa_key, "RS256", "r1")).rpps == "10000000001"
    assert verifier.verify("Bearer " + _oidc_token(ec_key, "ES256", "e1")).role == "practitioner"


def test_oidc_refusals(idp) -> None:
    rsa_key, ec_key, verifier = idp
    cases = [
        _oidc_token(rsa_key, "RS256", "unknown-kid"),
        _oidc_token(rsa_key, "PS256", "r1"),  # key pinned to RS256
        _oidc_token(rsa_key, "RS256", "e1"),  # EC key named for an RSA signature
        _oidc_token(rsa_key, "RS256", "r1", aud="other"),
        _oidc_token(rsa_key, "RS256", "r1", iss="https://other.example"),
        _oidc_token(rsa_key, "RS256", "r1", exp=int(time.time()) - 600),
        _oidc_token(ec_key, "ES256", "r1"),
    ]
    for token in cases:
        assert status_of(verifier, f"Bearer {token}")[0] == 401, jwt.get_unverified_header(token)
    assert (
        status_of(verifier, "Bearer " + _oidc_token(rsa_key, "RS256", "r1", role="bank"))[0] == 403
    )


def test_oidc_refuses_unsupported_algorithm_config(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    with pytest.raises(ValueError):
        TokenVerifier.oidc("https://psc.example", "dmp-fhir", path, algorithms=("HS256",))
