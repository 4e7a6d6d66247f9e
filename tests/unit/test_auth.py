"""Bearer tokens (services/common/auth.py): what verifies, what does not, and what each role may do."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from fastapi import HTTPException

from services.common import auth
from services.common.api import InvalidRequest
from services.common.auth import InvalidToken, Principal, Role, Verifier

KEY = auth.new_signing_key()
VERIFIER = Verifier(auth.public_key_of(KEY))


def test_a_token_carries_its_subject_and_role() -> None:
    for role in Role:
        assert VERIFIER.verify(auth.issue(KEY, "alice", role)) == Principal("alice", role)


def test_an_expired_token_is_refused() -> None:
    token = auth.issue(KEY, "alice", Role.CUSTOMER, ttl_s=60, now=time.time() - 3600)
    with pytest.raises(InvalidToken, match="expired"):
        VERIFIER.verify(token)


def test_a_token_of_another_key_is_refused() -> None:
    with pytest.raises(InvalidToken):
        VERIFIER.verify(auth.issue(auth.new_signing_key(), "alice", Role.ADMIN))


def _forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return ".".join((part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)))


def _claims(**changes: object) -> dict:
    now = int(time.time())
    return {"iss": auth.ISSUER, "aud": auth.AUDIENCE, "sub": "mallory", "role": "admin", "iat": now,
            "exp": now + 600, **changes}


def test_an_unsigned_token_is_refused() -> None:
    with pytest.raises(InvalidToken):
        VERIFIER.verify(_forge({"alg": "none", "typ": "JWT"}, _claims()))


def test_a_token_signed_with_the_public_key_as_an_hmac_secret_is_refused() -> None:
    # the classic algorithm confusion: only EdDSA is accepted, whatever the token's header says
    unsigned = _forge({"alg": "HS256", "typ": "JWT"}, _claims()).rsplit(".", 1)[0]
    mac = hmac.new(base64.b64decode(auth.public_key_of(KEY)), unsigned.encode(), hashlib.sha256).digest()
    token = f"{unsigned}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidToken):
        VERIFIER.verify(token)


@pytest.mark.parametrize("changes", [{"aud": "someone-else"}, {"iss": "someone-else"}, {"role": "root"},
                                     {"role": None}, {"sub": ""}, {"sub": "a b"}, {"sub": 7}])
def test_a_token_with_wrong_claims_is_refused(changes: dict) -> None:
    token = jwt.encode(_claims(**changes), auth._private(KEY), algorithm=auth.ALGORITHM)
    with pytest.raises(InvalidToken):
        VERIFIER.verify(token)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "iss"])
def test_a_token_missing_a_required_claim_is_refused(missing: str) -> None:
    claims = {k: v for k, v in _claims().items() if k != missing}
    with pytest.raises(InvalidToken):
        VERIFIER.verify(jwt.encode(claims, auth._private(KEY), algorithm=auth.ALGORITHM))


@pytest.mark.parametrize("subject,ttl", [("", 60), ("has space", 60), ("x" * 65, 60), ("alice", 0),
                                         ("alice", auth.MAX_TTL_S + 1)])
def test_issuing_checks_subject_and_lifetime(subject: str, ttl: int) -> None:
    with pytest.raises(ValueError):
        auth.issue(KEY, subject, Role.CUSTOMER, ttl_s=ttl)


def test_customers_own_only_their_own_and_staff_see_everything() -> None:
    alice = Principal("alice", Role.CUSTOMER)
    assert alice.owns("alice") and not alice.owns("bob") and not alice.owns(None)
    for staff in (Principal("ops", Role.OPERATOR), Principal("root", Role.ADMIN)):
        assert staff.owns("bob") and staff.owns(None)


def test_idempotency_scopes_are_per_subject_and_never_the_services_own() -> None:
    assert Principal("a", Role.CUSTOMER).idempotency_scope != Principal("b", Role.CUSTOMER).idempotency_scope
    assert not Principal("walsaga:saga-branch", Role.ADMIN).idempotency_scope.startswith("walsaga:")


def test_a_customer_acts_only_for_themselves() -> None:
    alice = Principal("alice", Role.CUSTOMER)
    assert auth.customer_for(alice, None, "place orders") == "alice"
    assert auth.customer_for(alice, "alice", "place orders") == "alice"
    with pytest.raises(HTTPException) as refused:
        auth.customer_for(alice, "bob", "place orders")
    assert refused.value.status_code == 403


def test_staff_act_for_a_named_customer() -> None:
    ops = Principal("ops", Role.OPERATOR)
    assert auth.customer_for(ops, "bob", "place orders") == "bob"
    with pytest.raises(InvalidRequest):
        auth.customer_for(ops, None, "place orders")
