# The README's commands. `make run` needs no servers; `make test` uses the local PostgreSQL,
# RabbitMQ and Redis (override the URLs below through the environment).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DATABASE_URL_TEST ?= postgres://postgres@127.0.0.1:5432/flowyard
export TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/%2F
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test lint format venv clean

$(STAMP): requirements/base.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## the embedded quick start: SQLite, in-process broker and worker
	mkdir -p var
	DEBUG=true $(BIN)/python manage.py migrate --no-input
	DEBUG=true $(BIN)/python manage.py importworkflows || true
	DEBUG=true $(BIN)/python manage.py ensureadmin
	DEBUG=true $(BIN)/python manage.py standalone --addr 127.0.0.1:8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint  ## the whole suite, against PostgreSQL, RabbitMQ and Redis
	DATABASE_URL=$${DATABASE_URL:-$(DATABASE_URL_TEST)} $(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
