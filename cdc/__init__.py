"""CDC plumbing: registering Debezium connectors, watching their state and replication-slot lag."""
