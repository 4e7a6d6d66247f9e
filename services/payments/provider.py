"""The payment-provider port and the built-in simulated provider (Stripe's test payment methods)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy import Boolean, Column, Engine, Integer, MetaData, Numeric, Table, Text, select
from sqlalchemy.dialects.postgresql import insert

APPROVING = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"}
DECLINING = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}
# Fault injection for the fault suite: the provider charges, then the call times out (an ambiguous answer).
CHARGE_THEN_TIMEOUT = "pm_card_visa_chargeThenTimeout"


@dataclass(frozen=True)
class Authorization:
    approved: bool
    provider_ref: str
    decline_code: str | None = None


class ProviderTimeout(Exception):
    """The provider did not answer in time; it may or may not have acted. Retry with the same idempotency key."""


class PaymentProvider(Protocol):
    """Every call carries an idempotency key: the provider answers a repeated key with the first result, so an
    ambiguous answer (charged, then timed out) can be retried without charging twice."""

    def authorize(self, idempotency_key: str, amount: Decimal, currency: str, payment_method: str) -> Authorization: ...

    def capture(self, idempotency_key: str, provider_ref: str) -> None: ...

    def void(self, idempotency_key: str, provider_ref: str) -> None: ...

    def refund(self, idempotency_key: str, provider_ref: str, amount: Decimal) -> None: ...


def simulated_authorization(idempotency_key: str, payment_method: str, fault_injection: bool = True) -> Authorization:
    """The simulated provider's answer, a pure function of the key and the method (Stripe's test methods). The
    fault-injection method is an unsupported one unless the stack runs in test mode."""
    ref = f"sim_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:24]}"
    if payment_method in APPROVING or (payment_method == CHARGE_THEN_TIMEOUT and fault_injection):
        return Authorization(True, ref)
    return Authorization(False, ref, DECLINING.get(payment_method, "unsupported_payment_method"))


ledger_metadata = MetaData()
ledger = Table(
    "sim_provider_ledger", ledger_metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("provider_ref", Text, nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("decline_code", Text, nullable=True),
    Column("amount", Numeric(18, 2), nullable=True),
    Column("calls", Integer, nullable=False),
)


# one statement, built once: a new key is recorded with calls=1, a repeated key counts one more call
_upsert = insert(ledger)
_RECORD = _upsert.on_conflict_do_update(index_elements=["idempotency_key"], set_={"calls": ledger.c.calls + 1})
_RECORD_RETURNING = _RECORD.returning(ledger)


class SimulatedProvider:
    """Behaves like an external provider with idempotency keys: it keeps its own ledger (committed on its own
    connection, outside the caller's transaction, as a remote system would), answers a repeated key with the first
    result, and counts the calls so tests can prove a retried key never charged twice."""

    def __init__(self, engine: Engine, fault_injection: bool = False) -> None:
        # each call is one statement, which commits on its own: no BEGIN and COMMIT round trips around it
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.fault_injection = fault_injection  # only in test mode: CHARGE_THEN_TIMEOUT times out after charging

    def authorize(self, idempotency_key: str, amount: Decimal, currency: str, payment_method: str) -> Authorization:
        answer = simulated_authorization(idempotency_key, payment_method, self.fault_injection)
        with self.engine.connect() as conn:
            row = conn.execute(_RECORD_RETURNING, {
                "idempotency_key": idempotency_key, "provider_ref": answer.provider_ref, "approved": answer.approved,
                "decline_code": answer.decline_code, "amount": amount, "calls": 1}).one()
        if self.fault_injection and payment_method == CHARGE_THEN_TIMEOUT and row.calls == 1:
            raise ProviderTimeout(f"provider timed out after charging {idempotency_key}")
        return Authorization(row.approved, row.provider_ref, row.decline_code)

    def capture(self, idempotency_key: str, provider_ref: str) -> None:
        self._record(idempotency_key, provider_ref)

    def void(self, idempotency_key: str, provider_ref: str) -> None:
        self._record(idempotency_key, provider_ref)

    def refund(self, idempotency_key: str, provider_ref: str, amount: Decimal) -> None:
        self._record(idempotency_key, provider_ref, amount)

    def calls(self, idempotency_key: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(ledger.c.calls).where(ledger.c.idempotency_key == idempotency_key)).scalar() or 0

    def _record(self, idempotency_key: str, provider_ref: str, amount: Decimal | None = None) -> None:
        with self.engine.connect() as conn:
            conn.execute(_RECORD, {"idempotency_key": idempotency_key, "provider_ref": provider_ref, "approved": True,
                                   "decline_code": None, "amount": amount, "calls": 1})
