"""The contracts: Avro schemas of every event and command, the codec, topic names and header names."""
