# reana-site: build, test and run.
#
#   sudo make run     build and run the daemon on its embedded defaults
#   sudo make test    install what the tests need (test/setup.sh), then vet and
#                     run every test, the end-to-end suite included
#   make unit         the tests that need neither root nor the test users
#   sudo make bench   the benchmarks, one "bench: ..." line each
#   make rpm          the RPM for EL9, in .cache/rpm (packaging/reana-site.spec)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# sudo's secure_path usually lacks /usr/local/go/bin, where Go is installed.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# A checkout owned by another user (or without git) must still build.
GOFLAGS ?= -buildvcs=false
export GOFLAGS

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
BIN := bin/reana-site
VENV := $(CURDIR)/.cache/venv
# daemon/spec cross-checks its results against the real reana-commons.
REANA_SITE_TEST_PYTHON ?= $(VENV)/bin/python
export REANA_SITE_TEST_PYTHON

# test/setup.sh needs root: use sudo unless we are root already.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: build build-deps setup test unit vet fmt-check bench run clean rpm

# SQLite comes in through cgo, so building needs a C compiler; as root on
# Debian it is installed when missing.
build-deps:
	@command -v gcc >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing gcc (cgo, for SQLite)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev; \
		else \
			echo "make: a C compiler is needed to build (cgo, for SQLite): apt-get install gcc" >&2; exit 1; \
		fi; }

build: build-deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/reana-site

setup:
	$(SUDO) bash test/setup.sh

test: setup fmt-check
	$(GO) vet -tags e2e,bench ./...
	$(GO) test -tags e2e -count=1 -timeout 40m ./...

unit:
	$(GO) test ./...

vet:
	$(GO) vet -tags e2e,bench ./...

fmt-check:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path './.cache/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi

# Prints only the "bench: <name> = <value> <unit> (goal <goal>)" lines; the
# whole output goes to .cache/bench.log, whose end is shown if the run fails.
bench: setup
	@mkdir -p .cache; log=.cache/bench.log; \
	if ! $(GO) test -tags bench -count=1 -run '^TestBench' -timeout 30m ./test/bench/ -v 2>&1 \
		| tee "$$log" | { grep --line-buffered '^bench:' || true; }; then \
		echo "make bench: the benchmark run failed; the end of $$log:" >&2; \
		tail -n 40 "$$log" >&2; \
		exit 1; \
	fi

# As root (sudo make run) the daemon uses its embedded defaults: state in
# /var/lib/reana-site, HTTPS on localhost:8443 with a self-signed certificate.
# As another user, state goes to ~/.local/state/reana-site and only that
# user can be served. REANA_SITE_* variables in the environment apply.
run: build
	./$(BIN) serve

# The RPM for EL9, in RPM_DIR; the last line printed is the package's path.
# The binary is built as for `make build`, but as a position-independent
# executable (as EL9's Go packages are) and without build paths. It needs
# rpmbuild (Debian: apt-get install rpm; EL9: dnf install rpm-build
# systemd-rpm-macros). Build the package for production on EL9 itself: the
# binary is linked against the build host's glibc (see
# packaging/reana-site.spec), and packaging/build-rpm.sh refuses a binary
# that needs a glibc newer than RPM_GLIBC_MAX (EL9's 2.34). RPM_PACKAGER
# ("Name <email>") names the packager; by default, the commit's author.
RPM_DIR ?= .cache/rpm
RPM_BIN := bin/rpm/reana-site
RPM_GLIBC_MAX ?= 2.34
RPM_PACKAGER ?=

rpm: build-deps
	$(GO) build -buildmode=pie -trimpath -ldflags "-X main.version=$(VERSION)" -o $(RPM_BIN) ./cmd/reana-site
	@RPM_GLIBC_MAX='$(RPM_GLIBC_MAX)' RPM_PACKAGER='$(RPM_PACKAGER)' bash packaging/build-rpm.sh '$(RPM_BIN)' '$(VERSION)' '$(RPM_DIR)'

clean:
	rm -rf bin
