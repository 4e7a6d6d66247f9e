"""Payments command handlers: command -> provider port -> one local transaction (payment + reply outbox row)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from schemas import topics
from schemas.headers import Envelope
from schemas.participants import participant
from services.common import outbox
from services.payments import db, domain
from services.payments.domain import Payment, PaymentStatus
from services.payments.provider import PaymentProvider


@dataclass(frozen=True)
class PaymentHandlers:
    provider: PaymentProvider

    def authorize(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
        order_id = record["order_id"]
        existing, barred = db.by_order_with_barrier(conn, order_id)
        if barred:
            # the saga already voided this order's payment (the void overtook this command): never charge now
            return self._reply(conn, env, "PaymentDeclined", {"order_id": order_id, "payment_id": "",
                                                              "decline_code": "voided_before_authorization"})
        if existing is None:
            # keyed by order: a redelivered or resent command never authorizes twice at the provider
            result = self.provider.authorize(f"authorize:{order_id}", record["amount"], record["currency"],
                                             record["payment_method"])
            existing = Payment(
                payment_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"payment:{order_id}")), order_id=order_id,
                amount=record["amount"], currency=record["currency"],
                status=PaymentStatus.AUTHORIZED if result.approved else PaymentStatus.DECLINED,
                provider_ref=result.provider_ref, decline_code=result.decline_code,
                customer_id=record["customer_id"])
            db.insert(conn, existing)
        if existing.status is PaymentStatus.DECLINED:
            return self._reply(conn, env, "PaymentDeclined", {
                "order_id": order_id, "payment_id": existing.payment_id,
                "decline_code": existing.decline_code or "declined"})
        else:
            return self._reply(conn, env, "PaymentAuthorized",
                               {"order_id": order_id, "payment_id": existing.payment_id})

    def capture(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
        payment = self._require(conn, record["order_id"])
        after = domain.move(payment, PaymentStatus.CAPTURED)
        if after is not None:
            self.provider.capture(f"capture:{payment.order_id}", payment.provider_ref or "")
            db.update(conn, payment, after)
        return self._reply(conn, env, "PaymentCaptured",
                           {"order_id": payment.order_id, "payment_id": payment.payment_id})

    def void(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
        payment = db.by_order(conn, record["order_id"], for_update=True)
        if payment is None:
            db.add_barrier(conn, record["order_id"])
        elif payment.status is not PaymentStatus.DECLINED:
            after = domain.move(payment, PaymentStatus.VOIDED)
            if after is not None:
                self.provider.void(f"void:{payment.order_id}", payment.provider_ref or "")
                db.update(conn, payment, after)
        return self._reply(conn, env, "PaymentVoided", {"order_id": record["order_id"]})

    def refund(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
        """Refunds a captured payment in full (the refund saga of a cancelled confirmed order); a repeat is a no-op."""
        payment = self._require(conn, record["order_id"])
        after = domain.move(payment, PaymentStatus.REFUNDED)
        if after is not None:
            self.provider.refund(f"refund:{payment.order_id}", payment.provider_ref or "", payment.amount)
            db.update(conn, payment, after)
        return self._reply(conn, env, "PaymentRefunded",
                           {"order_id": payment.order_id, "payment_id": payment.payment_id})

    def _require(self, conn: Connection, order_id: str) -> Payment:
        payment = db.by_order(conn, order_id, for_update=True)
        if payment is None:
            raise LookupError(f"no payment for order {order_id}")
        return payment

    def _reply(self, conn: Connection, cause: Envelope, event_type: str, record: dict[str, Any]) -> str:
        outbox.append(conn, db.outbox, topic=topics.PAYMENTS_REPLIES, aggregate_id=record["order_id"],
                      event_type=event_type, record=record, saga_id=cause.saga_id,
                      correlation_id=cause.correlation_id, causation_id=cause.event_id)
        return event_type

    def table(self) -> dict[str, Any]:
        return {"AuthorizePayment": self.authorize, "CapturePayment": self.capture, "VoidPayment": self.void,
                "RefundPayment": self.refund}


# the replies that are a business "no" to a command (a coordinator compensates on them): the registry's
FAILURE_REPLIES = participant("payments").failure_replies()
