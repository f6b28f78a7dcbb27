# Client drivers that t/integration/drivers_test.cc runs through pgrouter. Debian packages
# come from packaging/install-deps (psql, pgbench, python3-psycopg, libpostgresql-jdbc-java,
# a JDK, node, npm); node-pg is not packaged, so npm installs it into $(BUILD)/node_modules
# (never committed). Without npm or the registry the node test skips with a warning.
.PHONY: drivers-deps
NODE_PG := $(BUILD)/node_modules/pg/package.json

$(NODE_PG):
	@mkdir -p $(BUILD)
	@if command -v npm >/dev/null 2>&1; then \
	    npm install --prefix $(BUILD) --no-save --no-audit --no-fund --loglevel=error pg@8 || \
	        echo "drivers.mk: npm install pg failed; the node-pg test will be skipped" >&2; \
	else \
	    echo "drivers.mk: npm not found; the node-pg test will be skipped" >&2; \
	fi

drivers-deps: $(NODE_PG)
integration check: drivers-deps
