"""Who is calling: bearer tokens (JWT, EdDSA over Ed25519) carrying a subject and a role.

The stack generates one signing key pair and keeps the private half with its other secrets (walsaga/stack/config.py);
only `walsaga token` signs with it. The APIs get the public half (WALSAGA_TOKEN_PUBLIC_KEY): they can check a token,
never make one. PyJWT does the verifying (signature, expiry, issuer, audience); this module only says which claims
walsaga needs and what each role may do.

The gateway turns away a request without a bearer token (401) before it reaches an API; each API verifies the token
and authorizes the request (401 for a token that does not verify, 403 for a role that may not do it). A customer sees
only their own orders, payments, notifications and timelines: someone else's answers 404, so ids cannot be probed."""
from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.api import InvalidRequest

ISSUER = "walsaga"
AUDIENCE = "walsaga-api"
ALGORITHM = "EdDSA"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 30 * 24 * 3600
SUBJECT = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # the same shape as a customer id (services/common/http.py)
CHALLENGE = 'Bearer realm="walsaga"'


class Role(StrEnum):
    CUSTOMER = "customer"  # places, reads and cancels their own orders
    OPERATOR = "operator"  # reads everything, cancels any order, places orders on a customer's behalf
    ADMIN = "admin"        # what an operator may, plus stock levels


STAFF = frozenset({Role.OPERATOR, Role.ADMIN})
ROLES = frozenset(r.value for r in Role)


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    def owns(self, customer_id: str | None) -> bool:
        """May this caller see a resource of `customer_id`? Staff see everything."""
        return self.is_staff or (customer_id is not None and customer_id == self.subject)

    @property
    def idempotency_scope(self) -> str:
        """Idempotency keys are the caller's own: two callers may use the same key without meeting."""
        return f"sub:{self.subject}"


class InvalidToken(ValueError):
    pass


def new_signing_key() -> str:
    """A fresh private key, as one line (base64 of PKCS#8 DER) for the stack's secrets file."""
    der = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    return base64.b64encode(der).decode()


def public_key_of(signing_key: str) -> str:
    """The public half of a signing key, as one line (base64 of SubjectPublicKeyInfo DER)."""
    der = _private(signing_key).public_key().public_bytes(serialization.Encoding.DER,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def issue(signing_key: str, subject: str, role: Role, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    if not SUBJECT.match(subject):
        raise ValueError("a subject is 1-64 characters of letters, digits and . _ : -")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"the lifetime must be between 1 s and {MAX_TTL_S} s")
    issued = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "role": role.value, "iat": issued,
              "exp": issued + ttl_s}
    return jwt.encode(claims, _private(signing_key), algorithm=ALGORITHM)


class Verifier:
    def __init__(self, public_key: str) -> None:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the token public key is not an Ed25519 key")
        self._key = key

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss", "aud"]}, leeway=5)
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is not valid ({type(exc).__name__})") from exc
        subject, role = claims.get("sub"), claims.get("role")
        if not isinstance(subject, str) or not SUBJECT.match(subject):
            raise InvalidToken("the token's subject is malformed")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidToken("the token carries no known role")
        return Principal(subject, Role(role))


def _private(signing_key: str) -> Ed25519PrivateKey:
    key = serialization.load_der_private_key(base64.b64decode(signing_key), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the token signing key is not an Ed25519 key")
    return key


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, detail={"error": "unauthorized", "reason": reason},
                         headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})


# declares the scheme in each API's OpenAPI document; principal() below answers for it (a problem document)
BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="`walsaga token --subject S --role R`")


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
    """The FastAPI dependency every public route takes: the verified caller, or 401."""
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(401, detail={"error": "unauthorized", "reason": "an Authorization: Bearer token is needed"},
                            headers={"WWW-Authenticate": CHALLENGE})
    verifier: Verifier = request.app.state.token_verifier
    try:
        return verifier.verify(credentials.credentials.strip())
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc


Caller = Annotated[Principal, Depends(principal)]


def customer_for(caller: Principal, named: str | None, action: str) -> str:
    """The customer a request acts for: a customer acts for themselves (naming someone else is 403); staff act on a
    customer's behalf and must name one (422)."""
    if caller.is_staff:
        if named is None:
            raise InvalidRequest(f"customer_id: required when staff {action} on a customer's behalf")
        return named
    if named is not None and named != caller.subject:
        raise HTTPException(403, detail={"error": "forbidden",
                                         "reason": f"a customer may {action} only for themselves"})
    return caller.subject


def require(*roles: Role) -> Any:
    """A dependency that lets only these roles through (403 for the others)."""
    allowed = frozenset(roles)

    def check(caller: Caller) -> Principal:
        if caller.role not in allowed:
            raise HTTPException(403, detail={"error": "forbidden",
                                             "reason": f"needs the role {' or '.join(sorted(allowed))}"})
        return caller
    return Depends(check)
