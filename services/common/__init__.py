"""Plumbing shared by every service: settings, tables every service has (outbox, inbox, dead letters), the command
consumer loop, API error mapping and idempotency keys. No business rules here."""
