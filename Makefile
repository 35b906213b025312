# CityEvents: the commands a newcomer needs. Each target is a script in scripts/.
.PHONY: run stop test e2e faults lint ci bench proto sqlx-prepare infra image chart-test help

run:          ## start PostgreSQL, Redis, NATS and every service, seed demo data
	@bash scripts/run.sh
stop:         ## stop what `make run` started
	@bash scripts/stop.sh
test:         ## the whole suite against real PostgreSQL, Redis and NATS
	@bash scripts/test.sh
e2e:          ## the main journey through the BFF against the built binaries (REST, SSE, grpcio)
	@bash scripts/e2e.sh
faults:       ## join storms against the built binaries (SIGKILL, SIGTERM), reconciled
	@bash scripts/faults.sh
image:        ## the service image without Docker (buildah from scratch), run once with podman
	@bash scripts/image.sh
chart-test:   ## the Helm chart against a real Kubernetes API server (part of make test)
	@bash scripts/chart-test.sh
bench:        ## load scenarios (optimised build): joins, the BFF, live watchers, auth memory
	@bash scripts/bench.sh
lint:         ## rustfmt, clippy, buf lint and buf breaking
	@bash scripts/lint.sh
ci:           ## what CI runs
	@bash .ci/run
infra:        ## only install and start PostgreSQL, Redis and NATS
	@bash scripts/infra-up.sh
proto:        ## regenerate crates/proto/src/gen after editing proto/
	@GOOGLEAPIS_PROTO_DIR=$$(bash scripts/proto-deps.sh) CE_BLESS=1 cargo test -q -p cityevents-proto --test bootstrap
sqlx-prepare: ## refresh services/*/.sqlx after changing SQL or migrations
	@bash scripts/sqlx-prepare.sh
help:
	@grep -E '^[a-z-]+:.*##' Makefile | sed 's/:.*##/\t/'
