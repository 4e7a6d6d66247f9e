"""walsaga: the operator CLI and the local stack supervisor."""
