# Set-up is two commands: `make run` and `make test`. Both create .venv and install scalesim into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/scalesim run scenarios/quickstart.toml --force

test: $(STAMP)
	$(PY) -m pytest -q -n auto

bench: $(STAMP)
	$(PY) bench/run_bench.py && $(PY) bench/bench_throughput.py && $(PY) bench/bench_uncertainty.py

figures: $(STAMP)
	$(VENV)/bin/scalesim figures --out figures

clean:
	rm -rf $(VENV) results .pytest_cache
