# The two commands a newcomer needs: `make lab` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
SUBMISSIONS ?= submissions
GRADES ?= grades
# make grade UNSAFE_NO_SANDBOX=1: grade without the bubblewrap sandbox (trusted work only)
UNSAFE_NO_SANDBOX ?=
PORT ?= 8888
# conftest.py keeps Jupyter, IPython and matplotlib state out of your home during tests.
# Bytecode caches on even where the environment turns them off: every kernel, sandbox and
# pytest worker would otherwise compile vmmlib and rewrite the test modules again.
TESTENV := PYDEVD_DISABLE_FILE_VALIDATION=1 PYTHONDONTWRITEBYTECODE=

.PHONY: lab test unit fuzz notebooks exercises grade preflight bench slides lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[course]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## make lab: JupyterLab on the repository root (notebooks/, exercises/ one click apart),
## opened on the course overview
lab: $(STAMP)
	$(BIN)/jupyter lab --port $(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) \
		--ServerApp.root_dir=. notebooks/00-overview.ipynb

## make test: unit tests, every notebook under nbval, grading and browser tests
test: $(STAMP)
	$(BIN)/ruff check .
	$(TESTENV) $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout 120 \
		--ignore tests/fixtures tests notebooks solutions

## make unit: only the fast unit tests (no notebooks, no browser)
unit: $(STAMP)
	$(TESTENV) $(PY) -m pytest -p no:nbval -q tests --ignore-glob 'tests/test_browser*.py'

## make fuzz: a long fuzzing campaign of the core with hostile guests (minutes)
FUZZ_EXAMPLES ?= 4000
fuzz: $(STAMP)
	VMMLIB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -p no:nbval -q tests/test_fuzz*.py

## make notebooks: execute lecture notebooks and solutions, store their outputs
notebooks: $(STAMP)
	$(TESTENV) $(PY) -m vmmlib.course execute notebooks/*.ipynb solutions/*.ipynb

## make exercises: regenerate exercises/ from solutions/
exercises: $(STAMP)
	$(PY) -m vmmlib.course exercises solutions exercises

## make grade SUBMISSIONS=dir: grade a folder of submissions into $(GRADES)/, each student's
## code in a bubblewrap sandbox (the preflight says how to install it when it is missing)
grade: $(STAMP) $(if $(UNSAFE_NO_SANDBOX),,preflight)
	$(TESTENV) $(PY) -m vmmlib.course grade exercises $(SUBMISSIONS) $(GRADES) \
		$(if $(UNSAFE_NO_SANDBOX),--unsafe-no-sandbox)

## make preflight: can students' code be graded in a sandbox here? (how to install bwrap)
preflight: $(STAMP)
	@$(PY) -m vmmlib.course preflight

## make slides: offline reveal.js decks of the lecture notebooks in slides/ (the first run
## fetches reveal.js and the widgets' HTML manager from the npm registry into slides/vendor/)
slides: $(STAMP)
	$(PY) -m vmmlib.course slides slides notebooks/*.ipynb
	@echo "open slides/00-overview.slides.html in a browser (works offline)"

## make bench: run the benchmarks, one `name: value unit` line per figure
bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info slides $(GRADES)
