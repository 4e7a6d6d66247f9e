"""Faust stream processors driven by the change streams: the saga orchestrator and the notification fan-out."""
