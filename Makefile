# Bioviewer: two commands.
#   make run   installs what is missing, builds in release mode, serves on http://127.0.0.1:3000
#   make test  every test: cargo tests, then the browser tests (Playwright + Debian Chromium)
# See docs/build.md for what each step needs and how long it takes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# CI may point CARGO_TARGET_DIR at a cache outside the clone; everything below follows it.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
SITE_DIR := $(TARGET_DIR)/site
PKG_DIR := $(SITE_DIR)/pkg
OUTPUT_NAME := bioviewer
WASM_FILE := $(TARGET_DIR)/wasm32-unknown-unknown/wasm-release/bioviewer_app.wasm
# The wasm-bindgen CLI must be exactly the version of the crate in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/"/, "", $$3); print $$3; exit}' Cargo.lock)
# The wasm features rustc 1.95 emits for wasm32-unknown-unknown by default.
WASM_OPT_FEATURES := --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue
CORPUS_DIR ?= $(CURDIR)/../shared/corpus/ans-cr-bio
DATA_DIR ?= $(CURDIR)/data
LISTEN ?= 127.0.0.1:3000
CARGO ?= cargo
# The Python virtualenv of the FHIR validator, and where the tests leave their Bundles for it.
FHIR_VENV := $(TARGET_DIR)/fhir-venv
FHIR_OUT := $(TARGET_DIR)/fhir-bundles
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help run test deps deps-rust deps-python deps-browser site server-release test-rust test-e2e check clean-site fuzz bench

help:
	@echo "make run    build and serve Bioviewer on http://$(LISTEN)"
	@echo "make test   run every test (Rust, then the browser tests)"

## --- installation (idempotent, quick when everything is there) -----------------------------

deps: deps-rust deps-node deps-python deps-browser

deps-rust:
	@command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first"; exit 1; }
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
	  || { echo "adding the wasm32-unknown-unknown target"; rustup target add wasm32-unknown-unknown; }
	@if [ "$$(wasm-bindgen --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (about 4 minutes)"; \
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

# npm packages: Playwright for the browser tests, binaryen's wasm-opt for the bundle (the npm
# build; Debian's wasm-opt 108 produces a bundle that never hydrates, see docs/build.md).
deps-node:
	@command -v npm >/dev/null || { echo "installing node and npm"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ] \
	    || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then \
	  echo "installing the npm packages (Playwright, binaryen)"; \
	  cd end2end && npm ci --no-audit --no-fund --loglevel=error; \
	fi

# Python's fhir.resources validates every FHIR Bundle the tests produce (end2end/fhir/).
deps-python:
	@if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	  echo "installing Debian's python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	fi
	@if [ ! -x $(FHIR_VENV)/bin/python ] || [ end2end/fhir/requirements.txt -nt $(FHIR_VENV)/installed ]; then \
	  echo "installing the FHIR validator (fhir.resources) into $(FHIR_VENV)"; \
	  python3 -m venv $(FHIR_VENV) && $(FHIR_VENV)/bin/pip install -q --disable-pip-version-check -r end2end/fhir/requirements.txt \
	    && touch $(FHIR_VENV)/installed; \
	fi

deps-browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@# xmlsec1: an XML signature implementation we did not write checks our VIHF signatures.
	@if ! command -v xmlsec1 >/dev/null; then \
	  echo "installing Debian's xmlsec1"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 >/dev/null; \
	fi

## --- build ----------------------------------------------------------------------------------

# The hydrate bundle, without cargo-leptos: cargo for wasm32, then wasm-bindgen, then the
# stylesheet and public files, which is what `cargo leptos build` does.
# .cargo/config.toml sets `--cfg erase_components` for every build (bundle and server must agree).
site: deps-rust deps-node
	$(CARGO) build -p bioviewer-app --lib --target wasm32-unknown-unknown --profile wasm-release \
	  --no-default-features --features hydrate
	@rm -rf $(PKG_DIR) $(SITE_DIR)/hash.txt && mkdir -p $(PKG_DIR)
	wasm-bindgen --target web --no-typescript --out-dir $(PKG_DIR) --out-name $(OUTPUT_NAME) $(WASM_FILE)
	end2end/node_modules/.bin/wasm-opt -Oz $(WASM_OPT_FEATURES) $(PKG_DIR)/$(OUTPUT_NAME)_bg.wasm -o $(PKG_DIR)/$(OUTPUT_NAME).wasm
	rm $(PKG_DIR)/$(OUTPUT_NAME)_bg.wasm
	cp style/main.css $(PKG_DIR)/$(OUTPUT_NAME).css
	@# Files named by their content (as `cargo leptos build` with hash-files does): browsers keep
	@# them a year and a new build is fetched at once. The server reads the names in hash.txt.
	@for ext in js wasm css; do \
	  hash=$$(sha256sum $(PKG_DIR)/$(OUTPUT_NAME).$$ext | cut -c1-20); \
	  mv $(PKG_DIR)/$(OUTPUT_NAME).$$ext $(PKG_DIR)/$(OUTPUT_NAME).$$hash.$$ext; \
	  echo "$$ext: $$hash" >> $(SITE_DIR)/hash.txt; \
	done
	cp -R public/. $(SITE_DIR)/
	@wasm=$$(ls $(PKG_DIR)/$(OUTPUT_NAME).*.wasm); \
	  echo "site ready in $(SITE_DIR): wasm $$(stat -c %s $$wasm) bytes, gzip $$(gzip -9c $$wasm | wc -c) bytes"

server-release:
	$(CARGO) build --release -p bioviewer

## --- the two commands -------------------------------------------------------------------------

run: deps-rust deps-node site server-release
	@mkdir -p $(DATA_DIR)
	@if [ ! -s $(DATA_DIR)/bioviewer.db ]; then \
	  echo "generating demo patients (10 years of reports from 5 laboratories)"; \
	  $(TARGET_DIR)/release/bioviewer demo-data --patients 6 --years 10 --out $(DATA_DIR)/demo; \
	  if [ -d "$(CORPUS_DIR)" ]; then \
	    echo "adding the national agency's example documents from $(CORPUS_DIR)"; \
	    mkdir -p $(DATA_DIR)/demo/ans-cr-bio && cp "$(CORPUS_DIR)"/*.xml $(DATA_DIR)/demo/ans-cr-bio/; \
	  fi; \
	  echo "loading them (the same folder is the embedded DMP simulator's)"; \
	  $(TARGET_DIR)/release/bioviewer --data-dir $(DATA_DIR) --log-level warn import $(DATA_DIR)/demo >/dev/null; \
	fi
	@# The demo structure's VIHF signing key and certificate (a real DMP gets the structure's own).
	@if [ ! -s $(DATA_DIR)/structure.key.pem ]; then \
	  command -v openssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }; \
	  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=Bioviewer demo/CN=Structure de demonstration" \
	    -keyout $(DATA_DIR)/structure.key.pem -out $(DATA_DIR)/structure.cert.pem 2>/dev/null; \
	fi
	@# Idempotent: creates the demo accounts once, prints the logins every time.
	@$(TARGET_DIR)/release/bioviewer --data-dir $(DATA_DIR) --log-level warn accounts demo
	@echo "Open http://$(LISTEN) in a browser and sign in with one of the logins above (Ctrl-C stops the server)."
	$(TARGET_DIR)/release/bioviewer --data-dir $(DATA_DIR) serve --listen $(LISTEN) --site-root $(SITE_DIR) \
	  --dmp-simulator $(DATA_DIR)/demo --dmp-structure-key $(DATA_DIR)/structure.key.pem --dmp-structure-cert $(DATA_DIR)/structure.cert.pem

test: deps test-rust site test-e2e

# The tests leave every FHIR Bundle they produce in $(FHIR_OUT); the validator then checks
# them all against the specification (a failure fails make test).
# The server's tests (store, access, HTTP) then run a second time on PostgreSQL, each test in a
# database of its own, when a server answers at $(PG_TEST_URL) (this project's machines run one
# at 127.0.0.1:5432, trust auth; BIOVIEWER_TEST_DATABASE_URL names another); otherwise they are
# skipped, saying so.
PG_TEST_URL := $(or $(BIOVIEWER_TEST_DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
export PG_TEST_URL

test-rust:
	rm -rf $(FHIR_OUT)
	BIOVIEWER_FHIR_OUT=$(FHIR_OUT) BIOVIEWER_TEST_DATABASE_URL= $(CARGO) test --workspace --all-targets
	$(FHIR_VENV)/bin/python end2end/fhir/validate.py $(FHIR_OUT) 10
	@if command -v pg_isready >/dev/null && pg_isready -q -d "$(PG_TEST_URL)"; then \
	  echo "the server's tests again, on PostgreSQL at $(PG_TEST_URL)"; \
	  BIOVIEWER_TEST_DATABASE_URL="$(PG_TEST_URL)" $(CARGO) test -p bioviewer --lib --test api; \
	else \
	  echo "SKIPPED: no PostgreSQL answers at $(PG_TEST_URL); the server's tests ran on SQLite only"; \
	fi

# Uses the debug server binary that test-rust built (no second, release, server build).
# The clinician's journey then runs once more with the server on PostgreSQL (when one answers).
test-e2e:
	cd end2end && BIOVIEWER_BIN=$(TARGET_DIR)/debug/bioviewer BIOVIEWER_SITE_ROOT=$(SITE_DIR) \
	  BIOVIEWER_CORPUS=$(CORPUS_DIR) npx playwright test
	@if command -v pg_isready >/dev/null && pg_isready -q -d "$(PG_TEST_URL)"; then \
	  echo "the journey again, the server on PostgreSQL at $(PG_TEST_URL)"; \
	  cd end2end && BIOVIEWER_BIN=$(TARGET_DIR)/debug/bioviewer BIOVIEWER_SITE_ROOT=$(SITE_DIR) \
	    BIOVIEWER_CORPUS=$(CORPUS_DIR) BIOVIEWER_E2E_POSTGRES="$(PG_TEST_URL)" npx playwright test tests/journey.spec.ts; \
	else \
	  echo "SKIPPED: no PostgreSQL answers at $(PG_TEST_URL); the journey ran on SQLite only"; \
	fi

## --- fuzzing and benchmarks (not part of make test) -----------------------------------------

FUZZ_SECONDS ?= 600
FUZZ_CORPUS := $(TARGET_DIR)/fuzz-corpus/parse

# cargo-fuzz needs a nightly toolchain (sanitizers); only the fuzz build uses it.
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	@mkdir -p $(FUZZ_CORPUS)
	@# Seeds: the shared corpus (kept out of git; the fuzzer's own finds stay in the cache).
	@cp -n "$(CORPUS_DIR)"/*.xml $(FUZZ_CORPUS)/ 2>/dev/null || true
	cd server/fuzz && CARGO_TARGET_DIR=$(TARGET_DIR)/fuzz $(CARGO) +nightly fuzz run --fuzz-dir . parse \
	  $(FUZZ_CORPUS) -- -dict=cda.dict -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=4194304

bench:
	$(CARGO) bench -p bioviewer-core --bench parse

check:
	$(CARGO) check --workspace --all-targets
	$(CARGO) check -p bioviewer-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate

clean-site:
	rm -rf $(SITE_DIR)
