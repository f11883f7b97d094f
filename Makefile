# Shortcuts; the README's two commands are `bash scripts/demo.sh` and `bash scripts/test.sh` (as root).
.PHONY: deps build check test demo bench format lint

deps:
	sh scripts/deps.sh

build: deps
	swift build

# The fast tier: suites tagged .fast, in process, no root and no network (a few minutes warm).
check:
	sh scripts/check.sh

test:
	sh scripts/test.sh

demo:
	bash scripts/demo.sh

bench: deps
	bash bench/layering.sh 5
	bash bench/agent.sh 10

# The same files CI checks (scripts/format.sh --check); the generated OpenAPI code is left as generated.
format:
	sh scripts/format.sh

lint:
	sh scripts/format.sh --lint
