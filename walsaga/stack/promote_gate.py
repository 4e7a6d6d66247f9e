"""Patroni's `pre_promote` for a participant's database (HA profile): may this standby become the primary without
Debezium losing or skipping an event?

PostgreSQL 15 has no failover slots. Patroni copies the Debezium slot to the standby and advances it (permanent
logical slots), but a logical walsender may read WAL the standby never received. If the connector's committed
offset lies past what this standby has, the promoted timeline reuses those positions for new transactions and
Debezium, resuming at its offset, would skip them without a word. So the promotion is refused, loudly, when:

- the slot is not on this standby (Debezium would make a fresh one at the current position: a gap);
- the slot is ahead of the connector's offset (PostgreSQL would start decoding past events not yet published);
- the connector's committed offset is past this standby's received WAL;
- Kafka Connect cannot tell the offset (nothing to compare with: refusing is the safe answer; Patroni asks again
  on its next loop, so the promotion goes ahead once Connect answers). After `walsaga down`, which records the
  offsets once it has stopped every worker, that record stands in for Connect until a worker starts again.

A non-zero exit makes Patroni give up the leader race for a while and retry; every refusal is written to the
gate's file beside the data directory, which `walsaga status` shows. Run by Patroni as the `postgres` user with
the system Python (Patroni's own, which has psycopg2): this file is copied beside the clusters with a JSON of its
parameters, and imports nothing of walsaga's.
"""
from __future__ import annotations

import base64
import json
import sys
import time
import urllib.request
from typing import Any


def lsn_to_int(lsn: str) -> int:
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def offset_lsn(offsets: dict[str, Any]) -> int | None:
    """The highest LSN in a Connect `GET /connectors/<name>/offsets` answer (Debezium's lsn, lsn_proc, lsn_commit:
    where it resumes), or None when it has committed none."""
    found = [int(value) for entry in offsets.get("offsets", [])
             for key, value in (entry.get("offset") or {}).items()
             if key in ("lsn", "lsn_proc", "lsn_commit") and value is not None]
    return max(found) if found else None


def refusal(slot: dict[str, Any] | None, database: str, committed: int | None, received: int) -> str | None:
    """Why this standby must not be promoted, or None. `slot`: its row of the Debezium slot (plugin, database,
    confirmed_flush as an int) or None; `committed`: the connector's offset LSN; `received`: the standby's WAL."""
    if slot is None:
        return "the Debezium slot is not on this standby: Debezium would start from a fresh slot past a gap"
    if slot["plugin"] != "pgoutput" or slot["database"] != database:
        return f"the slot here is not Debezium's ({slot['plugin']} on {slot['database']})"
    if committed is None:
        return None  # the connector never committed an offset: it starts from the slot, which is here
    if slot["confirmed_flush"] is not None and slot["confirmed_flush"] > committed:
        return (f"the slot here confirms {slot['confirmed_flush']} past the connector's offset {committed}: "
                "events in between would never be published")
    if committed > received:
        return (f"the connector's offset {committed} is past this standby's WAL {received}: events of the new "
                "timeline below it would be skipped")
    return None


def _connect_offsets(params: dict[str, Any]) -> dict[str, Any]:
    """Connect's answer about the connector's offsets. When no worker runs, what `walsaga down` recorded as it
    stopped them (walsaga/stack/connect_offsets.py), if it did."""
    token = base64.b64encode(f"{params['connect_user']}:{params['connect_password']}".encode()).decode()
    errors = []
    unreachable = True
    for url in params["connect_urls"]:
        req = urllib.request.Request(f"{url}/connectors/{params['connector']}/offsets",
                                     headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(req, timeout=3) as resp:
                return dict(json.load(resp))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # no such connector (yet): no offsets, and the slot must still be here
                return {"offsets": []}
            errors.append(f"{url}: HTTP {exc.code}")
            unreachable = False
        except (OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    stopped = params.get("stopped_offsets_file")
    if unreachable and stopped:
        try:
            with open(stopped) as f:
                return dict(json.load(f))  # Connect stopped cleanly: its offsets cannot have moved since
        except FileNotFoundError:
            pass
    raise RuntimeError("Kafka Connect did not tell the connector's offset (" + "; ".join(errors) + ")")


def _local(params: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    import psycopg2  # the system Python's (Patroni's); imported here so the decision above tests without it

    conn = psycopg2.connect(host=params["socket_dir"], port=params["port"], dbname="postgres",
                            user=params["admin_user"], password=params["admin_password"], connect_timeout=3)
    try:
        cur = conn.cursor()
        cur.execute("SELECT plugin, database, pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint "
                    "FROM pg_replication_slots WHERE slot_name = %s", (params["slot"],))
        row = cur.fetchone()
        cur.execute("SELECT pg_wal_lsn_diff(GREATEST(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), "
                    "'0/0')::bigint")
        received = cur.fetchone()[0]
    finally:
        conn.close()
    slot = None if row is None else {"plugin": row[0], "database": row[1], "confirmed_flush": row[2]}
    return slot, int(received or 0)


def main(params_file: str) -> int:
    with open(params_file) as f:
        params = json.load(f)
    try:
        slot, received = _local(params)
        reason = refusal(slot, params["database"], offset_lsn(_connect_offsets(params)), received)
    except Exception as exc:  # noqa: BLE001 - whatever stops the check refuses the promotion
        reason = f"the check could not run: {exc}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    verdict = f"{stamp} REFUSED promotion of {params['member']}: {reason}" if reason else \
        f"{stamp} allowed promotion of {params['member']}"
    print(f"walsaga promote gate: {verdict}", file=sys.stderr, flush=True)
    with open(params["verdict_file"], "w") as f:
        f.write(verdict + "\n")
    return 1 if reason else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
