# `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.effnet-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision come first, pinned, so nothing else pulls another build
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/effnet demo

test: $(STAMP)
	# what some end-to-end tests use: PostgreSQL on loopback, headless Chromium, Fashion-MNIST (Debian packages)
	for s in scripts/ensure_postgres.sh scripts/ensure_chromium.sh scripts/ensure_fashion_mnist.sh; do [ ! -f $$s ] || bash $$s || exit 1; done
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) build .pytest_cache
