# apt-layer: the two commands a newcomer needs are `make demo` and `make test` (both as root).
SHELL := /bin/bash
export OSTREE_SYSROOT_DEBUG := mutable-deployments

# Every system package the build, the tests and the demo use.
DEPS := libostree-dev ostree bubblewrap mmdebstrap dpkg-dev apt-utils busybox-static \
        systemd procps python3 bc pkg-config gzip binutils libsystemd-dev libsqlite3-dev curl openssl ca-certificates

.PHONY: deps build test demo bench format lint

deps:
	@if ! dpkg -s $(DEPS) >/dev/null 2>&1; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS); fi

build: deps
	swift build

test: build
	swift build --build-tests
	swift test

demo: build
	bash scripts/demo.sh

bench: deps
	bash bench/layering.sh 5

format:
	swift format -i -r Sources Tests Package.swift

lint:
	swift format lint -r Sources Tests Package.swift
