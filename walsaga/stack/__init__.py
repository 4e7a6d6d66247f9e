"""Starts, stops and inspects the local stack (Postgres, Kafka, Connect, nginx, the Python processes)."""
