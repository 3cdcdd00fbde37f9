# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# `make run` is the development shape: SQLite, local media, eager tasks, sandbox gateway.
RUN_ENV := DEBUG=true DATABASE_URL=sqlite:///db.sqlite3 REDIS_URL= AWS_STORAGE_BUCKET_NAME=

# `make rehearsal` boots the production shape (nginx, gunicorn, celery, LocalStack S3, SMTP) and drives a buyer.
.PHONY: install run lint test fuzz-money test-next-year rehearsal audit-pages drill migrate messages compile-messages bench-sweep bench-sync bench-api bench-webhooks bench-load bench-launch bench-outbound bench-audit clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt pins every package, so installs a month apart match.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput

run: install
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(MAKE) compile-messages
	$(RUN_ENV) $(BIN)/python manage.py load_demo
	$(RUN_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(MAKE) compile-messages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The money state machine (tests/billing/test_money_state_machine.py) with fresh random seeds for
# MINUTES minutes; a failure is shrunk, printed and kept in tests/billing/hypothesis-db/ (commit it).
# Needs PostgreSQL (DATABASE_URL). IGNORE=code,code leaves out problems already routed (docs/billing.md).
MINUTES ?= 10
fuzz-money: install
	MONEY_FUZZ_MINUTES=$(MINUTES) MONEY_FUZZ_IGNORE=$(IGNORE) $(BIN)/python -m pytest tests/billing/test_money_state_machine.py \
	  -k fuzz -x -q -p no:randomly $(PYTEST_ARGS)

# ruff (pyproject's [tool.ruff]), the import contracts ([tool.importlinter]) and the circle finder;
# `make test` runs the last two as well (tests/test_architecture.py). CI runs this before `make test`.
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/import_graph.py --check

# The same suite with the machine's clock a year ahead (libfaketime, Debian's `faketime`):
# no test may depend on the calendar. CI runs it after `make test`.
FAKETIME_LIB := /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
test-next-year: install
	@test -f $(FAKETIME_LIB) || { echo "needs libfaketime: apt-get install faketime"; exit 1; }
	$(MAKE) compile-messages
	LD_PRELOAD=$(FAKETIME_LIB) FAKETIME=+365d $(BIN)/python -m pytest $(PYTEST_ARGS)

# The production rehearsal (docs/operations.md): installs what it needs (nginx, chromium,
# a cached LocalStack venv in .rehearsal-cache/), needs the machine's PostgreSQL and Redis.
rehearsal: install
	$(MAKE) compile-messages
	$(BIN)/python -m rehearsal.run

# Lighthouse and axe-core on home, a creator, plans, a checkout and the account, phone and desktop
# (docs/site.md): `make run`'s shape on a throwaway SQLite database; npm packages pinned in
# rehearsal/audit/package-lock.json, cached in .rehearsal-cache/audit/. Needs Node 18.16+, chromium, chromedriver.
audit-pages: install
	$(MAKE) compile-messages
	$(BIN)/python -m rehearsal.audit_pages $(AUDIT_ARGS)

# The fault drill (docs/operations.md, ~6 min): a private PostgreSQL and Redis it can kill, gunicorn, celery
# worker and beat, the fake JunglePay; five faults under buyers' traffic, each counted, failing on a loss or duplicate.
drill: install
	$(MAKE) compile-messages
	$(BIN)/python -m rehearsal.drill $(DRILL_ARGS)

# Each app keeps its own catalogue (<app>/locale); config/ and templates/ use ./locale.
APPS := accounts billing catalog whitelabel
messages: install
	for app in $(APPS); do \
	  (cd $$app && mkdir -p locale && DEBUG=true DJANGO_SETTINGS_MODULE=config.settings PYTHONPATH=.. \
	   ../$(BIN)/django-admin makemessages -l pt_BR -l en --no-obsolete -v 0); \
	done
	DEBUG=true $(BIN)/python manage.py makemessages -l pt_BR -l en --no-obsolete -v 0 \
	  $(foreach app,$(APPS),--ignore=$(app)) --ignore=.venv --ignore=bench --ignore=tests
	$(MAKE) compile-messages

# Babel compiles in pure Python, so a fresh machine needs no GNU gettext.
compile-messages: install
	@for dir in locale locale/third_party $(foreach app,$(APPS),$(app)/locale); do \
	  if [ -d $$dir ]; then $(BIN)/pybabel --quiet compile -D django -d $$dir || exit 1; fi; \
	done

# Benchmarks print figures; they need PostgreSQL (and Redis where named), e.g.
#   make bench-load DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7
# Each works in a database of its own. See docs/operations.md for the figures.
BENCH_ENV = DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

# bench/needs.py checks (and where it can, installs) what each one needs, and says how to get it.
bench-webhooks: install
	$(BENCH_ENV) $(BIN)/python bench/needs.py postgres
	$(BENCH_ENV) $(BIN)/python bench/webhooks.py

bench-sweep: install
	$(BENCH_ENV) $(BIN)/python bench/needs.py postgres
	$(BENCH_ENV) $(BIN)/python bench/sweep.py

bench-sync: install
	$(BENCH_ENV) $(BIN)/python bench/needs.py postgres
	$(BENCH_ENV) $(BIN)/python bench/sync.py

bench-api: install
	$(BENCH_ENV) $(BIN)/python bench/needs.py postgres wrk
	$(BENCH_ENV) $(BIN)/python bench/api.py

bench-load: install
	$(BENCH_ENV) REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/7} $(BIN)/python bench/needs.py postgres redis
	$(BENCH_ENV) REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/7} $(BIN)/python bench/load.py

# The launch (issue 16): nginx → gunicorn + a Celery worker, buyers polling their PIX, ~5 min at most.
bench-launch: install
	$(BENCH_ENV) REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/7} $(BIN)/python bench/needs.py postgres redis wrk
	$(BENCH_ENV) REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/7} $(BIN)/python bench/launch.py $(BENCH_ARGS)

# Outbound webhooks (issue 14): 10,000 events through the outbox and a Celery worker to a local receiver.
bench-outbound: install
	$(BENCH_ENV) REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/7} $(BIN)/python bench/needs.py postgres redis
	$(BENCH_ENV) REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/7} $(BIN)/python bench/outbound.py $(BENCH_ARGS)

# The money audit (issue 20) on 200,000 subscriptions / 1,000,000 checkouts, bulk-loaded in SQL (~12 min to load).
bench-audit: install
	$(BENCH_ENV) $(BIN)/python bench/needs.py postgres
	$(BENCH_ENV) $(BIN)/python bench/audit.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
