# The two commands a user needs: `make up` and `make test`. Everything else is a convenience around `walsaga`.
SHELL := /bin/bash
WALSAGA := .venv/bin/walsaga

.PHONY: install up down status demo wipe test unit lint faults bench bench-reconcile soak availability up-ha down-ha status-ha wipe-ha test-ha faults-ha

install:  ## install Debian packages, the virtualenv and the JVM jars (idempotent, cached)
	@bash stack/install.sh

up: install  ## start the whole stack, wait until healthy, run the demo, print the gateway URL
	@$(WALSAGA) up
	@$(WALSAGA) demo

up-ha: install  ## the HA profile on its own ports and home: 3 KRaft nodes, 2 Connect workers, two of every worker
	@$(WALSAGA) up --ha
	@$(WALSAGA) demo --ha

down-ha:
	@$(WALSAGA) down --ha

status-ha:
	@$(WALSAGA) status --ha

wipe-ha:
	@$(WALSAGA) wipe --ha --yes

down:  ## stop everything, keeping data
	@$(WALSAGA) down

status:
	@$(WALSAGA) status

demo:
	@$(WALSAGA) demo

wipe:  ## stop everything and delete all data of the dev stack
	@$(WALSAGA) wipe --yes

test: install  ## the whole suite: starts its own stack (other ports, other data dir) and stops it at the end
	@.venv/bin/python -m pytest -ra $(PYTEST_ARGS)

test-ha: install  ## the HA profile's failover tests on a stack of their own (after `make test`, never beside it)
	@WALSAGA_HA_TESTS=1 .venv/bin/python -m pytest -ra tests/ha $(PYTEST_ARGS)

faults-ha: install  ## the same with a rolling restart of every tier, and (re)write docs/reliability/HA.md
	@WALSAGA_HA_TESTS=1 WALSAGA_ROLLING_TIERS=all WALSAGA_WRITE_REPORT=1 .venv/bin/python -m pytest -ra tests/ha \
		$(PYTEST_ARGS)

lint: install  ## ruff, mypy (strict on the domain, saga engine, contracts, runtime), the contracts' compatibility
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/walsaga schemas check
	@.venv/bin/walsaga compose check
	@cd deploy/compose/check && go run . -env-file ../env.example ../../../docker-compose.yml ../../../docker-compose.ha.yml

unit: install  ## only the pure tests, no stack
	@.venv/bin/python -m pytest -ra tests/unit $(PYTEST_ARGS)

faults: install  ## the fault suite alone, and (re)write docs/reliability/REPORT.md
	@WALSAGA_WRITE_REPORT=1 .venv/bin/python -m pytest -ra tests/faults $(PYTEST_ARGS)

bench: install  ## open-loop saga benchmark on a stack of its own; writes docs/benchmarks/REPORT.md
	@.venv/bin/python -m bench.run

soak: install  ## 12 min of orders on the bench stack with retention compressed; writes docs/benchmarks/SOAK.md
	@.venv/bin/python -m bench.soak

availability: install  ## the HA stack, 10 min of orders and reads, a fault every 60 s; writes docs/reliability/AVAILABILITY.md
	@.venv/bin/python -m bench.availability

bench-reconcile: install  ## walsaga reconcile on 1M orders per database; writes docs/benchmarks/RECONCILE.md
	@.venv/bin/python -m bench.reconcile_scale
