# Every target that needs Python depends on .venv/.installed, so a fresh clone needs only `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# `make test` runs the suite in this many processes, each with its own Spark session; a test
# file stays in one process (its module fixtures are built once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
CLUSTER_PORT ?= 7077
CLUSTER_UI_PORT ?= 8080

# pyspark 4.3 beside the dev pin (4.2.0, which the jvm extra's delta-spark needs): a smoke subset.
SMOKE_VENV := .venv-spark43
SMOKE_PYSPARK ?= 4.3.*
SMOKE_TESTS := tests/unit/test_cli.py tests/unit/test_submit_command.py tests/unit/test_profiles.py \
	tests/spark/test_delta_format.py tests/spark/test_delta_idempotency.py \
	tests/spark/test_sequence.py tests/spark/test_fan_out.py tests/e2e/test_submit.py \
	tests/spark/test_delta_read_deletions.py tests/spark/test_delta_stream_sink.py

.PHONY: setup run test smoke-43 lint bench package cluster-up cluster-down clean postgres-server jdbc-driver

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java 17 or newer is required by Spark and was not found on PATH."; \
	  echo "Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and run make again."; exit 1; }
	@java -version 2>&1 | awk -F'"' '/version/ { split($$2, v, "."); if (v[1] < 17) { \
	  print "Java " $$2 " found; Spark 4 needs Java 17 or newer."; \
	  print "Install openjdk-17-jre-headless (or newer) and put it first on PATH."; exit 1 } }'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/spark-flow demo

test: setup postgres-server
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

smoke-43: $(SMOKE_VENV)/.installed
	$(SMOKE_VENV)/bin/python -c 'import pyspark; print("pyspark", pyspark.__version__)'
	$(SMOKE_VENV)/bin/pytest $(PYTEST_ARGS) $(SMOKE_TESTS)

$(SMOKE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/pip install --quiet --upgrade pip
	$(SMOKE_VENV)/bin/pip install --quiet -e '.[test]' 'pyspark==$(SMOKE_PYSPARK)'
	@touch $@

# Debian packages a target needs, installed when missing (as root with apt-get; elsewhere say so).
define apt_install
if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
  echo "Installing Debian's $(1): $(2)."; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
else \
  echo "$(1) is missing and only root can apt-get install it: $(2)."; \
fi
endef

# The postgres tests start a server of their own with initdb/pg_ctl (tests/postgres/conftest.py).
postgres-server:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { $(call apt_install,postgresql,the postgres tests start a server with its initdb and pg_ctl) }

# Spark's own JDBC writer, the baseline of bench/bench_postgres.py (Maven is out of reach).
jdbc-driver:
	@test -f /usr/share/java/postgresql.jar || \
	  { $(call apt_install,libpostgresql-jdbc-java,bench_postgres.py compares with df.write.jdbc) }

lint: setup
	$(BIN)/ruff check spark_flow jobs tests bench
	$(BIN)/ruff format --check spark_flow jobs tests bench
	$(BIN)/mypy

# Every benchmark, then bench/results/latest.{json,md}: ratios against same-run baselines.
bench: setup postgres-server jdbc-driver
	@mkdir -p bench/results && date +%s > bench/results/.started
	$(BIN)/python bench/bench_delta.py
	$(BIN)/python bench/bench_delta_scale.py --millions 1,2,4,8 --repeat 3
	$(BIN)/python bench/bench_delta_maintenance.py
	$(BIN)/python bench/bench_delta_read.py --rows 2000000 --repeat 3
	$(BIN)/python bench/bench_delta_mapping.py --rows 2000000 --repeat 5
	$(BIN)/python bench/bench_sequence.py --rows 1000000
	$(BIN)/python bench/bench_accounting.py --rows 1000000 --repeat 3
	$(BIN)/python bench/bench_fan_out.py --rows 200000
	$(BIN)/python bench/bench_fan_in.py
	$(BIN)/python bench/bench_runners.py
	$(BIN)/python bench/bench_leases.py
	$(BIN)/python bench/bench_streaming.py --rows 50000
	$(BIN)/python bench/bench_streaming.py --rows 25000 --decode-rounds 8
	$(BIN)/python bench/bench_postgres.py --rows 1000000
	$(BIN)/python bench/bench_object_store.py --rows 1000000 --repeat 3
	$(BIN)/python bench/report.py $$(cat bench/results/.started)

# dist/spark_flow.zip: the wheel's contents for spark-submit --py-files, which puts only .zip,
# .egg and .jar files on the executors' path (a .whl there reaches the driver alone).
package: setup
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .
	cp "$$(ls -t dist/spark_flow-*.whl | head -n 1)" dist/spark_flow.zip
	@ls dist/*.whl dist/spark_flow.zip

# A standalone master and worker on 127.0.0.1 (pids and logs in data/cluster); prints the URL.
# Jobs go to it with: $(BIN)/spark-flow submit JOB --profile cluster --master spark://127.0.0.1:$(CLUSTER_PORT) -- ...
cluster-up: setup
	$(BIN)/spark-flow cluster up --port $(CLUSTER_PORT) --ui-port $(CLUSTER_UI_PORT)

cluster-down: setup
	$(BIN)/spark-flow cluster down

clean:
	rm -rf $(VENV) $(SMOKE_VENV) dist data spark-warehouse .pytest_cache .mypy_cache .ruff_cache
