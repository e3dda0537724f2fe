VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install demo test check format bench profile clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,emulator]'
	touch $@

install: $(VENV)/.installed

# The demo job fails some items on purpose (exit code 1); any other code is a real error.
# --emulate-scenario makes some of its messages too old, absent or sent to someone else;
# samples/rongcloud.jsonl is RongCloud's part of the same cleanup.
# Then collect finds a sender's messages in a sample export; they are too old to recall, as
# the plan warns (the export is from 2025).
demo: install
	@$(BIN)/batchrecall run samples/demo.jsonl samples/rongcloud.jsonl --emulate \
		--emulate-scenario samples/demo.scenario.json --yes --overwrite; code=$$?; \
		[ $$code -le 1 ] || exit $$code
	@echo
	@echo "Tencent Cloud IM: one-to-one and group recalls, one side's copies, conversations"
	@$(BIN)/batchrecall run samples/tencent.jsonl --emulate \
		--emulate-scenario samples/tencent.scenario.json --yes --overwrite; code=$$?; \
		[ $$code -le 1 ] || exit $$code
	@echo
	@echo "Summarise it again: $(BIN)/batchrecall report samples/demo.results.jsonl"
	@echo
	@echo "Find what to take back: spammer-7's messages in a downloaded Easemob history export"
	@$(BIN)/batchrecall collect easemob --export samples/demo.export.jsonl --sender spammer-7 \
		--since 2025-12-03T09:00Z --until 2025-12-03T10:00Z --ref INC-7 \
		--out samples/demo.collected.jsonl; code=$$?; [ $$code -le 1 ] || exit $$code
	@$(BIN)/batchrecall plan samples/demo.collected.jsonl

test: install
	$(BIN)/pytest

check: install
	$(BIN)/ruff format --check batchrecall tests benchmarks
	$(BIN)/ruff check batchrecall tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format batchrecall tests benchmarks
	$(BIN)/ruff check --fix batchrecall tests benchmarks

bench: install
	$(PY) -m benchmarks
	@if command -v redis-server >/dev/null; then $(PY) -m benchmarks.shared_limits \
		&& $(PY) -m benchmarks.shared_run; \
	else echo "shared limits through Redis: skipped (apt-get install redis-server)"; fi

# Where a run's CPU goes (pyinstrument): the product at 64 in flight, or PROFILE_CONCURRENCY.
profile: install
	$(PY) -m benchmarks.profile

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
