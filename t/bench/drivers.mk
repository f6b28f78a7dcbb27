# Client drivers that t/integration/drivers_test.cc runs through pgrouter. Debian packages
# come from packaging/install-deps (psql, pgbench, python3-psycopg, python3-psycopg2,
# python3-asyncpg, python3-sqlalchemy, libpostgresql-jdbc-java, a JDK, node, npm); node-pg
# and postgres.js are not packaged, so npm installs them into $(BUILD)/node_modules (never
# committed), both in one command (a second `npm install --no-save` would prune the first).
# Without npm or the registry the node tests skip with a warning.
.PHONY: drivers-deps
NODE_PACKAGES := $(BUILD)/node_modules/pg/package.json $(BUILD)/node_modules/postgres/package.json

$(NODE_PACKAGES) &:
	@mkdir -p $(BUILD)
	@if command -v npm >/dev/null 2>&1; then \
	    npm install --prefix $(BUILD) --no-save --no-audit --no-fund --loglevel=error \
	        pg@8 postgres@3 || \
	        echo "drivers.mk: npm install pg postgres failed; the node tests will be skipped" >&2; \
	else \
	    echo "drivers.mk: npm not found; the node tests will be skipped" >&2; \
	fi

drivers-deps: $(NODE_PACKAGES)
integration check: drivers-deps
