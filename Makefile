# Set-up and the two everyday jobs. `make demo` and `make test` each do all the set-up a
# fresh machine needs: a virtual environment in .venv with librunner built into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SOURCES := pyproject.toml setup.py $(wildcard runner/*.pyx runner/core/*.pxi runner/core/*.h runner/doors/*.pxi csrc/*.c csrc/*.h csrc/*.map include/*.h)

.PHONY: demo serve test fuzz soak sanitize system-deps proto clean

demo: $(INSTALLED)
	$(PY) -m runner run examples/alt/demo.json --out output

# The Runner Service on 127.0.0.1:8080 with the echo AI provider (no AI service needed); Ctrl-C stops it.
serve: $(INSTALLED)
	env -u RUNNER_AI_SERVICE_URL -u RUNNER_AI_PROVIDER $(PY) -m runner serve --out output --alt-dir examples/alt

test: $(INSTALLED) system-deps
	$(PY) -m pytest -q

# A bounded fuzzing campaign: every target of fuzz/ for FUZZ_SECONDS (about 2.5 minutes in all).
FUZZ_SECONDS ?= 30
fuzz: $(INSTALLED)
	$(PY) fuzz/campaign.py --seconds $(FUZZ_SECONDS)

# Kill/resume soak of durable runs (kill -9 and SIGTERM at random moments of runs and resumes,
# resumed until done; no effect repeated outside the window after a kill) for SOAK_SECONDS.
SOAK_SECONDS ?= 300
SOAK_SEED ?= 1
soak: $(INSTALLED)
	$(PY) benchmarks/soak_resume.py --seconds $(SOAK_SECONDS) --seed $(SOAK_SEED)

# librunner.so and tests/c/ under AddressSanitizer + UBSan (build/sanitize/); see README.
sanitize: $(INSTALLED)
	scripts/sanitize

$(INSTALLED): $(SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

system-deps:
	@scripts/install-system-deps

# The KServe v2 stubs are committed (see runner/ai/proto/README.md); this regenerates them
# after a change to the .proto files. tests/test_ai_kserve_stubs.py checks they match.
PROTO_INCLUDE = $(shell $(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
proto: $(INSTALLED)
	$(PY) -m grpc_tools.protoc -I. -I$(PROTO_INCLUDE) --python_out=. --grpc_python_out=. runner/ai/proto/grpc_service.proto
	$(PY) -m grpc_tools.protoc -I. -I$(PROTO_INCLUDE) --python_out=. runner/ai/proto/rpc_status.proto

clean:
	rm -rf build $(VENV) runner/librunner.so runner/librunner.c runner/librunner.h *.egg-info
