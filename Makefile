# Shortcuts; the README's two commands are `bash scripts/demo.sh` and `bash scripts/test.sh` (as root).
.PHONY: deps build test demo bench format lint

deps:
	sh scripts/deps.sh

build: deps
	swift build

test:
	sh scripts/test.sh

demo:
	bash scripts/demo.sh

bench: deps
	bash bench/layering.sh 5
	bash bench/agent.sh 10

format:
	swift format -i -r Sources Tests Package.swift

lint:
	swift format lint -r Sources Tests Package.swift
