"""The business services. Each owns one database and changes it only in local transactions that also write an
outbox row; none imports another's internals (contracts live in schemas/)."""
