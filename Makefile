# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Offline, reproducible, in-repo settings for every dbt / Python process started here.
export DBT_PROFILES_DIR := $(CURDIR)
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export TEXT_CLUSTERING_ONNX_DIR ?= $(CURDIR)/.cache/onnx
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export TOKENIZERS_PARALLELISM := false
# ONNX Runtime (1.32 on Linux) keeps a device id in ~/.cache/Microsoft and sends events unless this
# is set (the embedder sets it too, for runs outside make)
export ORT_DISABLE_TELEMETRY := 1

.PHONY: setup browser java demo test lint pytest docs clean demo-data

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: 2.13.0 is a CPU build on local disk; unpinned pulls multi-GB CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m text_clustering warmup
	touch $@

setup: $(VENV)/.installed

demo: setup
	mkdir -p output
	$(BIN)/dbt build --vars '{reference_label_column: section}'
	$(BIN)/python -m text_clustering summary

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint models tests/dbt
	$(BIN)/mypy

# Every apt-get update keeps the English package descriptions: the image sets
# Acquire::Languages "none", and an update without this drops the lists the bench's Debian
# corpus is read from.
APT_UPDATE := apt-get update -qq -o Acquire::Languages=en

# Debian's Chromium and chromedriver, for the test of the interactive map (offline, headless).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  ($(APT_UPDATE) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	   --no-install-recommends chromium chromium-driver >/dev/null) || \
	  (echo "install Debian's chromium and chromium-driver (as root) to run the map test" >&2; exit 1)

# A Java runtime for the Spark path's test and bench (pyspark 4 runs on Java 17+): Debian's, if missing.
java:
	@command -v java >/dev/null 2>&1 || \
	  ($(APT_UPDATE) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	   --no-install-recommends openjdk-17-jre-headless >/dev/null) || \
	  (echo "install Debian's openjdk-17-jre-headless (as root) to run the Spark test" >&2; exit 1)

# Two pytest processes, one test file at a time each (a module's fixtures, e.g. its dbt build,
# stay in one process): the suite is mostly dbt's single-threaded work, so on the 2-core
# machine it takes about half as long (docs/development.md). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

pytest: setup browser java
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint pytest

# Remake data/debian_packages.parquet (needs a Debian machine; the demo itself does not).
demo-data: setup
	apt-get update -o Acquire::Languages=en
	$(BIN)/python scripts/make_demo_data.py --per-section 200 --output data/debian_packages.parquet

clean:
	rm -rf target logs output .cache .pytest_cache

# Benchmark and evaluation harness (bench/README.md): BERTopic in its own venv, reference
# corpora from Debian packages (English package descriptions, WordNet, fortunes).
BENCH_VENV := bench/.venv-bertopic
.PHONY: bench-setup bench bench-maps bench-demo bench-epochs bench-fit bench-floor bench-timeline eval

$(BENCH_VENV)/.installed: bench/requirements-bertopic.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet torch==2.13.0
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements-bertopic.txt
	NUMBA_CACHE_DIR=$(CURDIR)/$(BENCH_VENV)/numba-cache $(BENCH_VENV)/bin/python bench/run_bertopic.py --warmup
	touch $@

bench-setup: setup $(BENCH_VENV)/.installed
	@test -f /usr/share/wordnet/data.noun && test -d /usr/share/games/fortunes || \
	  ($(APT_UPDATE) && DEBIAN_FRONTEND=noninteractive \
	   apt-get install -y -qq --no-install-recommends wordnet-base fortunes >/dev/null)
	@ls /var/lib/apt/lists/*_i18n_Translation-en* >/dev/null 2>&1 || \
	  $(APT_UPDATE)

bench: bench-setup bench-maps bench-demo java
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/spark.py

# The README's `make demo` on a fresh clone of HEAD, install included, timed
# (bench/results/demo.{md,json}).
bench-demo: setup
	$(BIN)/python bench/demo.py

# UMAP layout epochs of large fits: scores and time per var n_epochs (bench/results/epochs.*).
bench-epochs: bench-setup
	PYTHONPATH=$(CURDIR)/src $(BIN)/python bench/epochs.py

# UMAP / clustering fit size on tables larger than a fit: scores, time and memory per var
# max_fit_rows (bench/results/fit_rows.*).
bench-fit: bench-setup
	PYTHONPATH=$(CURDIR)/src $(BIN)/python bench/fit_rows.py

# What an unchanged rebuild costs dbt alone: our rebuild of 100k texts vs twins of its DAG whose
# models and tests do nothing (bench/results/dbt_floor.*).
bench-floor: bench-setup
	PYTHONPATH=$(CURDIR)/src $(BIN)/python bench/dbt_floor.py

# Where a 100k cold build's wall goes and how many cores each phase and model keeps busy
# (bench/results/timeline.{md,json}).
bench-timeline: bench-setup
	PYTHONPATH=$(CURDIR)/src $(BIN)/python bench/timeline.py

# The interactive map at 10k and 100k points in headless Chromium: file size, load, redraw
# (bench/results/maps.{md,json}).
bench-maps: setup browser
	PYTHONPATH=$(CURDIR)/src $(BIN)/python bench/maps.py

# Toponymy's layered clusterer in its own venv, for `make eval` and `make eval-hierarchy`
# (bench/requirements-toponymy.txt).
TOPONYMY_VENV := bench/.venv-toponymy
.PHONY: bench-setup-toponymy eval-hierarchy

$(TOPONYMY_VENV)/.installed: bench/requirements-toponymy.txt
	$(PYTHON) -m venv $(TOPONYMY_VENV)
	$(TOPONYMY_VENV)/bin/pip install --quiet --upgrade pip
	$(TOPONYMY_VENV)/bin/pip install --quiet torch==2.13.0
	$(TOPONYMY_VENV)/bin/pip install --quiet -r bench/requirements-toponymy.txt
	touch $@

bench-setup-toponymy: $(TOPONYMY_VENV)/.installed

eval: bench-setup bench-setup-toponymy
	OUR_PYTHON=$(BIN)/python PYTHONPATH=$(CURDIR)/src $(BIN)/python bench/eval.py

eval-hierarchy: bench-setup bench-setup-toponymy
	$(BIN)/python bench/eval_hierarchy.py
