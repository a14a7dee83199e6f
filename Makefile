# LockProof. `make test` and `make verify` work from nothing on a fresh Debian machine as root:
# they install what is missing, start throwaway PostgreSQL and Redis under .run/, and stop them.
# Set LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL to use servers of your own instead.

SWIFT ?= swift
SWIFT_TEST_FLAGS ?= --disable-swift-testing

.PHONY: deps build release test test-fixtures check-scripts verify mutants fuzz bench check-dashboards check-monitoring services-start services-stop clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## test: the script checks, unit and concurrency tests on real servers, the API contract (schemathesis
## against a running serve, scripts/check-api.sh), then the promtool checks
## A hung test fails the run within this bound instead of eating CI's whole time limit.
SWIFT_TEST_TIMEOUT ?= 40m
test: deps check-scripts
	@scripts/with-services.sh timeout -k 30s $(SWIFT_TEST_TIMEOUT) $(SWIFT) test $(SWIFT_TEST_FLAGS) || { \
		status=$$?; [ $$status -ne 124 ] || echo "make test: swift test did not finish within $(SWIFT_TEST_TIMEOUT): a test hangs" >&2; \
		exit $$status; }
	scripts/with-services.sh scripts/check-api.sh
	scripts/check-dashboards.sh
	$(MAKE) --no-print-directory test-fixtures

## test-fixtures: the shop fixture (Tests/Fixtures/shop, a peer team's implementation of the cases for black-box
## mode): ruff, then pytest against throwaway PostgreSQL: each bug switch breaks its invariant, the correct build none
test-fixtures: deps
	python3 -m ruff check Tests/Fixtures
	scripts/with-services.sh timeout -k 10s 10m python3 -m pytest -q -p no:cacheprovider Tests/Fixtures/shop

## check-scripts: ruff and pytest over the Python helpers in scripts/, and Package.swift against the
## import lines of every target (scripts/check_imports.py); quick, so it runs first
check-scripts: deps
	python3 -m ruff check scripts
	python3 -m pytest -q scripts
	python3 scripts/check_imports.py

## verify: release build; the monitoring loop end to end (scripts/check-monitoring.sh, about 1.5 minutes) in
## the background, the scenarios starting once only its last alert waits (about a minute) remain, so
## that they overlap; every scenario in Scenarios/ with its checkers and thresholds, promtool checks,
## the reports against docs/schemas/, the black-box quick suites; then the monitoring check's output.
## Its failure fails verify, and so does a hang (stopped LOCKPROOF_MONITORING_BOUND, 660, s after its start).
verify: deps
	scripts/with-services.sh scripts/verify.sh

## mutants: every mutant of Tests/Mutants/ applied to a scratch copy, built, and run against
## `lockproof verify --fail-fast` 3 times (MUTANTS_RUNS); prints the table and the score. Not part of CI.
mutants: deps
	scripts/with-services.sh scripts/mutants.sh

## fuzz: libFuzzer on the scenario and threshold parsers (corpus from Scenarios/) and the API request reader
## (corpus api/fuzz-corpus/), FUZZ_SECONDS (default 60) each
## (not part of test: make test runs a short seeded-mutator smoke run of the same targets instead)
fuzz: deps
	scripts/fuzz.sh

## bench: the quick benchmark (every strategy against its pgbench ceiling, claim verdicts, HTML
## report checked in headless Chromium) on throwaway servers; reports in .run/bench. Not part of CI.
bench:
	@scripts/install-deps.sh bench
	scripts/with-services.sh scripts/bench.sh

check-dashboards: deps
	scripts/check-dashboards.sh

## check-monitoring: real Prometheus + Alertmanager + webhook receiver + lockproof: alerts fire, are
## delivered and resolve, a killed serve pages, every dashboard expression returns data
check-monitoring: deps
	scripts/with-services.sh scripts/check-monitoring.sh

services-start:
	@scripts/services.sh start

services-stop:
	@scripts/services.sh stop

clean:
	-scripts/services.sh stop
	rm -rf .run .build
