"""How a contract may change: the compatibility rule of each subject, the check of a new version against every
earlier one, and the fingerprints that freeze a published version.

A subject is one record type (`OrderCreated`); its versions are `<Type>.v<N>.avsc`. Readers resolve the writer's
version to their own (schemas/codec.py), so a change must let every version read every other: BACKWARD (a new reader
reads old records) and FORWARD (an old reader reads new records), against every earlier version (TRANSITIVE), because
records of any age may still sit in a topic or in a dead-letter queue waiting to be replayed. In practice: add a field
only with a default, remove only a field that had one, never change a type or a name. A published version never
changes (its fingerprint is frozen in fingerprints.txt); a change is a new version."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import Schema
from avro.schema import parse as parse_avro
from fastavro.schema import fingerprint as crc64
from fastavro.schema import parse_schema, to_parsing_canonical_form

FINGERPRINTS = Path(__file__).with_name("fingerprints.txt")


class Rule(Enum):
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


# Commands, replies and events alike: a consumer of any release must read a record of any release still in flight.
DEFAULT_RULE = Rule.FULL_TRANSITIVE
RULES: Mapping[str, Rule] = {}


def rule(subject: str) -> Rule:
    return RULES.get(subject, DEFAULT_RULE)


def fingerprint(schema_json: Mapping[str, Any]) -> str:
    """The Avro spec's CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, as 16 hex digits."""
    return str(crc64(to_parsing_canonical_form(parse_schema(dict(schema_json))), "CRC-64-AVRO"))


@dataclass(frozen=True)
class Version:
    subject: str
    version: int
    schema: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.subject}.v{self.version}"


def incompatibilities(versions: Iterable[Version]) -> list[str]:
    """Every pair of versions of a subject that its rule forbids, named and explained; empty when all is well."""
    by_subject: dict[str, list[Version]] = {}
    for v in versions:
        by_subject.setdefault(v.subject, []).append(v)
    problems: list[str] = []
    for subject, found in sorted(by_subject.items()):
        ordered = sorted(found, key=lambda v: v.version)
        for i, newer in enumerate(ordered):
            for older in ordered[:i]:
                problems += _pair(rule(subject), older, newer)
    return problems


def _pair(subject_rule: Rule, older: Version, newer: Version) -> list[str]:
    checks = []
    if subject_rule in (Rule.BACKWARD_TRANSITIVE, Rule.FULL_TRANSITIVE):
        checks.append(("BACKWARD", newer, older))  # the new reader reads the old writer's records
    if subject_rule in (Rule.FORWARD_TRANSITIVE, Rule.FULL_TRANSITIVE):
        checks.append(("FORWARD", older, newer))  # the old reader reads the new writer's records
    problems = []
    for direction, reader, writer in checks:
        checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro ships no hints
        result = checker.get_compatibility(_avro(reader), _avro(writer))
        if result.compatibility is not SchemaCompatibilityType.compatible:
            detail = "; ".join(sorted(str(m) for m in result.messages)) or "incompatible"
            problems.append(f"{writer.label} -> {reader.label} ({direction}, rule {subject_rule.value}): "
                            f"{reader.label} cannot read {writer.label}'s records: {detail}")
    return problems


def _avro(version: Version) -> Schema:
    return parse_avro(json.dumps(version.schema))


def release_problems(shipped: Mapping[tuple[str, int], Mapping[str, Any]],
                     fingerprints: Path = FINGERPRINTS) -> list[str]:
    """What CI refuses in a release's contracts: a version its subject's rule forbids, or a published one changed."""
    versions = [Version(subject, version, schema) for (subject, version), schema in sorted(shipped.items())]
    return incompatibilities(versions) + drift(versions, frozen(fingerprints))


def frozen(path: Path = FINGERPRINTS) -> dict[str, str]:
    """The fingerprints of every published version, by label (`OrderCreated.v1`)."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, _, value = line.partition(" ")
        if not value.strip():
            raise ValueError(f"{path.name}:{n}: expected '<Type>.v<N> <fingerprint>', got {line!r}")
        out[label] = value.strip()
    return out


def drift(versions: Iterable[Version], published: Mapping[str, str]) -> list[str]:
    """Versions whose schema is not the one published under their label, published versions that are gone, and
    versions never recorded in fingerprints.txt (with the line to add)."""
    problems = []
    present = {v.label: fingerprint(v.schema) for v in versions}
    for label, fp in sorted(present.items()):
        if label not in published:
            problems.append(f"{label} is not in {FINGERPRINTS.name}: add the line '{label} {fp}'")
        elif published[label] != fp:
            problems.append(f"{label} changed after it was published (fingerprint {fp}, published "
                            f"{published[label]}): restore it and add the change as a new version")
    problems += [f"{label} was published but its .avsc is gone: a reader may still meet its records"
                 for label in sorted(set(published) - set(present))]
    return problems
