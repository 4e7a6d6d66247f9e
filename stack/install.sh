#!/usr/bin/env bash
# Installs everything walsaga needs on a fresh Debian-like machine, and nothing twice:
#   Debian packages (PostgreSQL, nginx, Java 17, Maven, wrk; Patroni, etcd, HAProxy for the HA profile), the Python
#   virtualenv (.venv) with pinned deps, and the Kafka / Kafka Connect / Debezium jars from Maven Central (into
#   .stack/, cached after the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
say() { printf 'walsaga install: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------------------------
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
# a JDK, not only a runtime: walsaga's Debezium task (cdc/quiet-task) is compiled here
command -v javac >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v setfacl >/dev/null 2>&1 || need+=(acl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# the HA profile's database failover (walsaga up --ha): Patroni pairs, their etcd quorum, HAProxy in front. Only
# the HA profile needs them: without root they are named, and the dev stack installs without them
ha_need=()
command -v patroni >/dev/null 2>&1 || ha_need+=(patroni)
command -v etcd >/dev/null 2>&1 || ha_need+=(etcd-server)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || ha_need+=(haproxy)
if [ ${#ha_need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    need+=("${ha_need[@]}")
  else
    say "the HA profile (walsaga up --ha) also needs these Debian packages: ${ha_need[*]} (install them as root)"
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${need[*]} (run as root, or install them yourself)"; exit 1
  fi
  # walsaga runs its own clusters; the package must not create and start a default one on port 5432
  mkdir -p /etc/postgresql-common
  if ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf 2>/dev/null; then
    echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  fi
  say "apt-get install ${need[*]} (first time only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
  # Debian's nginx starts a default server on port 80; the stack runs its own instance on its own port
  if [ -x /usr/sbin/nginx ] && pgrep -f 'nginx: master process /usr/sbin/nginx' >/dev/null 2>&1; then
    /usr/sbin/nginx -s quit 2>/dev/null || true
  fi
fi

# PostgreSQL's test_decoding output plugin would let a replication role decode every table, not only the outbox
# publication that pgoutput (Debezium's plugin) is limited to: moved aside, and kept aside through package upgrades.
for plugin in /usr/lib/postgresql/*/lib/test_decoding.so; do
  [ -e "$plugin" ] || continue
  if [ "$(id -u)" -eq 0 ]; then
    say "moving PostgreSQL's test_decoding plugin aside ($plugin -> $plugin.walsaga-disabled)"
    dpkg-divert --quiet --local --rename --divert "$plugin.walsaga-disabled" --add "$plugin"
  else
    say "warning: $plugin is installed (a replication role could decode any table); run this as root to move it aside"
  fi
done

# --- Python virtualenv -----------------------------------------------------------------------------------------
PY=${WALSAGA_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
stamp=.venv/.walsaga-deps
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating .venv and installing the pinned Python dependencies (first time only, ~1-2 min)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --progress-bar on -q --upgrade pip
  .venv/bin/python -m pip install --progress-bar on -e ".[test,bench,lint]"
  echo "$want" > "$stamp"
fi

# --- the runtime user ------------------------------------------------------------------------------------------
# The stack's processes never run as root: started by root, they run as this system user (walsaga/stack/runtime_user.py),
# which must reach (not list) the directories above the checkout and above the Python the virtualenv runs on.
if [ "$(id -u)" -eq 0 ]; then
  if ! id -u walsaga >/dev/null 2>&1; then
    say "creating the system user walsaga (the stack's processes run as it)"
    useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin walsaga
  fi
  for start in "$REPO" "$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')"; do
    dir=""
    IFS=/ read -ra parts <<< "${start#/}"
    for part in "${parts[@]}"; do  # from the top down: a directory counts only once its parents let walsaga in
      dir="$dir/$part"
      if ! runuser -u walsaga -- test -x "$dir"; then
        say "letting walsaga through $dir (traverse only: setfacl u:walsaga:x)"
        setfacl -m u:walsaga:x "$dir"
      fi
    done
  done
  can_run() {
    runuser -u walsaga -- "$REPO/.venv/bin/python" -c \
      "import sys; sys.path.insert(0, '$REPO'); import walsaga.stack.config, faust, fastapi" 2>/dev/null
  }
  if ! can_run; then  # a checkout made with a closed umask: let walsaga read it (and the virtualenv in it)
    say "letting walsaga read $REPO (setfacl -R u:walsaga:rX)"
    setfacl -R -m u:walsaga:rX "$REPO"
  fi
  if ! can_run; then
    say "the walsaga user cannot run the stack's Python code from $REPO; make the checkout readable to it"; exit 1
  fi
fi

# --- Kafka, Kafka Connect and Debezium jars --------------------------------------------------------------------
jstamp=.stack/.jars
jwant=$(sha256sum stack/jvm/pom.xml | cut -d' ' -f1)
if [ "$(cat "$jstamp" 2>/dev/null)" != "$jwant" ]; then
  say "fetching Kafka 4.3.1, Kafka Connect and the Debezium 3.6.1 Postgres plugin from Maven Central (first time only)"
  # the dependency plugin skips an unpack it remembers (target/ markers): start clean
  rm -rf .stack/lib .stack/plugins stack/jvm/target
  mkdir -p .stack
  (cd stack/jvm && mvn -B -ntp -Dstyle.color=never package | sed 's/\x1b\[[0-9;]*m//g' | \
     grep -E 'Downloaded|BUILD|ERROR' | \
     awk '/Downloaded/ {n++; if (n % 25 == 0) printf "walsaga install: %d artifacts downloaded\n", n > "/dev/stderr"; next} {print}')
  test -f .stack/lib/kafka-4.3.1/kafka_2.13-4.3.1.jar
  test -d .stack/plugins/debezium-3.6.1.Final/debezium-connector-postgres
  echo "$jwant" > "$jstamp"
fi

# --- walsaga's Debezium task (cdc/quiet-task), built into the Debezium plugin directory ----------------------------
tstamp=.stack/.quiet-task
tdir=.stack/plugins/debezium-3.6.1.Final/debezium-connector-postgres
twant=$( (cat "$jstamp"; find cdc/quiet-task/pom.xml cdc/quiet-task/src -type f | sort | xargs cat) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$tstamp" 2>/dev/null)" != "$twant" ] || [ ! -f "$tdir/walsaga-debezium-quiet-task.jar" ]; then
  say "building walsaga's Debezium task (cdc/quiet-task; its Maven plugins are downloaded the first time)"
  if ! (cd cdc/quiet-task && mvn -B -ntp -q package >../../.stack/quiet-task-build.log 2>&1); then
    sed 's/\x1b\[[0-9;]*m//g' .stack/quiet-task-build.log | grep -E 'ERROR|BUILD' >&2; exit 1
  fi
  cp cdc/quiet-task/target/walsaga-debezium-quiet-task.jar "$tdir/"
  echo "$twant" > "$tstamp"
fi
say "all dependencies present"
