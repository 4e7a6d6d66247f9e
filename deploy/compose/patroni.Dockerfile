# A Patroni member of docker-compose.ha.yml: the postgres:15 image (Debian 12) with Debian's Patroni 3.0.2, the
# version the local HA stack runs (walsaga/stack/patroni.py), and the promote gate Patroni runs before a promotion
# (walsaga/stack/promote_gate.py: the standard library and psycopg2, which Patroni brings). The settings come from the
# `patroni-<db>` config and each member's environment (PATRONI_*), the passwords from deploy/compose/.env at run time.
FROM postgres:15

# Pinned to Debian's build: the image's PostgreSQL apt repository ships newer Patroni releases too.
ARG PATRONI_VERSION=3.0.2-1
RUN apt-get update \
    && apt-get install -y --no-install-recommends "patroni=${PATRONI_VERSION}" python3-etcd \
    && rm -rf /var/lib/apt/lists/*

COPY walsaga/stack/promote_gate.py /usr/local/lib/walsaga/promote_gate.py

USER postgres
EXPOSE 5432 8008
ENTRYPOINT ["patroni", "/etc/patroni/patroni.yml"]
