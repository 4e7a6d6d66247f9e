"""The walsaga.schemas topic on the real brokers: the stack publishes every contract version of this release, a
reader principal finds a writer schema there, and publishing refuses what a registry would refuse."""
from __future__ import annotations

import json
import uuid

import pytest

from schemas import codec, evolution
from services.common import published_schemas
from services.common.published_schemas import ConflictingSchema, PublishedSchemas
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def test_the_stack_published_every_version_it_ships_once(stack: StackConfig) -> None:
    admin = kafka_acls.admin(stack)
    published = published_schemas.read_all(admin)
    shipped = codec.sources()
    assert set(shipped) <= set(published)
    assert all(evolution.fingerprint(published[key]) == evolution.fingerprint(schema)
               for key, schema in shipped.items())
    assert published_schemas.publish(admin) == 0  # a second publication adds nothing


def test_a_reader_principal_finds_a_writer_schema_there(stack: StackConfig) -> None:
    lookup = PublishedSchemas(kafka_acls.access(stack, kafka_acls.PROCESSORS))
    assert lookup("OrderCreated", 2) == codec.sources()[("OrderCreated", 2)]
    assert lookup("OrderCreated", 99) is None


def test_publishing_refuses_a_changed_or_incompatible_version_and_writes_nothing(stack: StackConfig) -> None:
    admin = kafka_acls.admin(stack)
    before = published_schemas.read_all(admin)
    v1 = codec.sources()[("OrderCreated", 1)]
    changed = {**v1, "fields": [*v1["fields"], {"name": "note", "type": "string", "default": ""}]}
    with pytest.raises(ConflictingSchema, match="OrderCreated.v1 is published with another schema"):
        published_schemas.publish(admin, {("OrderCreated", 1): changed})
    v2 = codec.sources()[("OrderCreated", 2)]
    required = {**v2, "fields": [*v2["fields"], {"name": "region", "type": "string"}]}
    with pytest.raises(ConflictingSchema, match=r"OrderCreated.v2 -> OrderCreated.v3 \(BACKWARD"):
        published_schemas.publish(admin, {("OrderCreated", 3): required})
    assert published_schemas.read_all(admin) == before


def test_a_new_compatible_version_is_published_and_then_found(stack: StackConfig) -> None:
    admin = kafka_acls.admin(stack)
    subject = f"Probe{uuid.uuid4().hex}"
    v1 = {"type": "record", "name": subject, "fields": [{"name": "id", "type": "string"}]}
    v2 = {**v1, "fields": [*v1["fields"], {"name": "note", "type": ["null", "string"], "default": None}]}
    assert published_schemas.publish(admin, {(subject, 1): v1}) == 1
    assert published_schemas.publish(admin, {(subject, 1): v1, (subject, 2): v2}) == 1
    published = published_schemas.read_all(kafka_acls.access(stack, kafka_acls.VIEWS))
    assert (published[(subject, 1)], published[(subject, 2)]) == (v1, v2)
    assert json.dumps(published[(subject, 2)], sort_keys=True) == json.dumps(v2, sort_keys=True)
