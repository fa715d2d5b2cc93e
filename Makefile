# Unit 0.0「ニューラルエンジンの深部」: every workflow of the course.
# A fresh clone needs only Python 3.11: each target creates .venv from requirements.txt first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements-installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help venv lab release release-assignment solutions check-release demo autograde redflags similarity corpus hostile mutation test test-student-env test-browser hub hub-deps test-hub browser-deps sandbox-deps bench bench-autograde bench-digits bench-smoke clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements into $(VENV) (first run takes a few minutes)..."
	@$(PY) -m pip install --disable-pip-version-check -q --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

venv: $(STAMP) ## create or refresh .venv from requirements.txt

lab: $(STAMP) ## open JupyterLab on the student edition (notebooks/), nbgrader extensions enabled (extra flags: LAB_ARGS=...)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

release: $(STAMP) ## source/ -> release/ (nbgrader) and notebooks/; fails on any leaked solution
	$(PY) -m coursetools.build release

solutions: $(STAMP) ## execute every source notebook -> solutions/ (outputs kept)
	$(PY) -m coursetools.build solutions

check-release: $(STAMP) ## only the leakage check of release/ and notebooks/
	$(PY) -m coursetools.leakage

demo: $(STAMP) sandbox-deps ## autograde the sample class in examples/, feedback, grades.csv, score table
	$(PY) -m coursetools.demo

autograde: $(STAMP) sandbox-deps ## grade submitted/ of a real class, one sandbox per submission, JOBS at a time (default: cores); lists what needs a human (ASSIGNMENT=name; UNSANDBOXED=1 only if you must)
	$(PY) -m coursetools.grading.autograde $(if $(UNSANDBOXED),--unsandboxed) $(if $(JOBS),--jobs $(JOBS)) $(ASSIGNMENT)

release-assignment: $(STAMP) ## nbgrader release_assignment A=name through the exchange; refused while an assignment whose answers it restates is not yet due (FORCE=1 releases anyway)
	$(PY) -m coursetools.release_order release $(A) $(if $(FORCE),--force)

redflags: $(STAMP) ## report submissions with cheat patterns or broken files (SUBMISSIONS=dir, default submitted/ or examples/submitted/)
	@$(PY) -m coursetools.grading.redflags $(SUBMISSIONS) || test $$? -eq 1

similarity: $(STAMP) ## which answers look copied, per exercise, side by side: build/similarity/similarity.html + .csv (ASSIGNMENT=name(s), default all; COURSE=dir, default submitted/ here or examples/)
	$(PY) -m coursetools.similarity $(if $(COURSE),--course $(COURSE)) $(ASSIGNMENT)

corpus: $(STAMP) sandbox-deps ## wrong/right-answer corpus: each entry alone (qa/fastgrade.py, the grader's judge), then packed submissions through nbgrader autograde
	$(PY) -m qa.corpus

hostile: $(STAMP) sandbox-deps ## grade the hostile submissions (loops, huge output, a killed sandbox, cheats, memory bomb...) and print the outcomes
	$(PY) -m qa.hostile

mutation: $(STAMP) ## mutate every solution region, grade each mutant, report kill rates per notebook/exercise (about 1-2 min)
	$(PY) -m qa.mutation

test: $(STAMP) sandbox-deps ## the whole test suite (CI runs this)
	$(PY) -m pytest

test-student-env: $(STAMP) ## the student edition in a plain environment (requirements-student.txt only, oldest supported versions; Colab's setup path)
	$(PY) -m pytest student_env_tests

test-browser: $(STAMP) browser-deps sandbox-deps ## JupyterLab + nbgrader extensions driven in headless Chromium (screenshots: build/screenshots)
	$(PY) -m pytest browser_tests -m "not hub"

hub-deps: $(STAMP) sandbox-deps
	@command -v npm >/dev/null 2>&1 || { echo "make hub needs Node.js and npm for configurable-http-proxy (sudo apt-get install nodejs npm)" >&2; exit 1; }
	@test -x deploy/node_modules/.bin/configurable-http-proxy || (cd deploy && npm ci --silent --no-audit --no-fund)

hub: hub-deps ## this course's JupyterHub on this machine (deploy/): prints every address (hub, formgrader, Lab) and the logins
	$(PY) -m coursetools.hub

test-hub: hub-deps browser-deps ## a class on JupyterHub in headless Chromium (release -> feedback) and the hostile hub cases from students' servers
	$(PY) -m pytest browser_tests -m hub

# Chromium from the OS packages (Playwright never downloads a browser here) and a Japanese font,
# so that screenshots are legible. Installed when run as root; otherwise a clear message.
browser-deps:
	@if [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium and a Japanese font from the OS packages..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipaexfont >/dev/null; \
	  else \
	    echo "make test-browser needs Chromium. Install it with: sudo apt-get install chromium fonts-ipaexfont" >&2; \
	    echo "(or point CHROMIUM=/path/to/chrome at an installed Chrome/Chromium)" >&2; exit 1; \
	  fi; \
	fi
	@if command -v fc-list >/dev/null 2>&1 && [ -z "$$(fc-list :lang=ja)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-ipaexfont >/dev/null; \
	  else echo "note: no Japanese font installed; screenshots will show boxes (sudo apt-get install fonts-ipaexfont)" >&2; fi; \
	fi

# bubblewrap, the sandbox of every graded submission (coursetools/sandbox.py). Installed when run as
# root; otherwise a clear message (make autograde then stops unless UNSANDBOXED=1).
sandbox-deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing bubblewrap (the grading sandbox) from the OS packages..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) || \
	      { echo "could not install bubblewrap" >&2; exit 1; }; \
	  else \
	    echo "Grading needs bubblewrap: sudo apt-get install bubblewrap" >&2; exit $(if $(UNSANDBOXED),0,1); \
	  fi; \
	fi

bench: $(STAMP) ## wall time to execute each notebook top to bottom (median of 3 runs)
	$(PY) -m qa.bench

bench-autograde: $(STAMP) sandbox-deps ## grade a synthetic class (STUDENTS=30 per assignment, right/mixed/blank) with JOBS sandboxes: s per submission vs the notebook alone
	$(PY) -m qa.bench_autograde $(if $(STUDENTS),--students $(STUDENTS)) $(if $(JOBS),--jobs $(JOBS))

bench-digits: $(STAMP) ## Notebook 75's digits MLP: ms/epoch and accuracy, median of 5 runs (+ PyTorch if importable)
	$(PY) -m qa.bench_digits

bench-smoke: $(STAMP) sandbox-deps ## every benchmark in its short mode (CI): one run of each notebook, 6 submissions against stock nbgrader, 2 epochs of the digits MLP; fails on an error
	$(PY) -m qa.bench --runs 1
	$(PY) -m qa.bench_autograde --quick --workdir build/bench-smoke
	$(PY) -m qa.bench_digits --runs 1 --epochs 2

clean: ## remove .venv, build scratch and nbgrader state
	rm -rf $(VENV) build .pytest_cache gradebook.db submitted autograded feedback grades.csv
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
