// postgres.js for drivers_test.cc: tagged-template queries (each a named prepared statement,
// sent without waiting for the one before), SET and read-back, reads reused many times,
// read-your-writes in sql.begin(), an error in a transaction (rolled back), and
// `SELECT TABLE_f()` (a function that writes) in a session that has not written yet. With
// DRV_SCENARIO=shape, runs only the changed-shape scenario: a prepared SELECT *, ALTER TABLE
// ... ADD COLUMN from another connection, the statement again (DRV_SHAPE_PORTS=primary,
// standby,... are the nodes, which all have the column before it runs again).
// Takes CONFIG-JSON TABLE (TABLE exists: id int PRIMARY KEY, v text; empty, or with the row
// (1, 'one') for the shape scenario; TABLE_f() inserts a row) and prints one line per
// observation. Needs `postgres` on NODE_PATH (make installs it into build/node_modules).
'use strict';
const postgres = require('postgres');

const open = (config, port) => postgres({ ...config, port: port || config.port, max: 1,
  onnotice: () => {} });
const fmt = (rows) => JSON.stringify(rows.map((r) => ({ ...r })));

async function guards(config, table, log) {
  const sql = open(config);
  const t = sql(table);
  await sql.unsafe("SET DateStyle = 'SQL, DMY'");
  const days = [];
  for (let i = 0; i < 12; i++) days.push((await sql`SELECT '2024-03-05'::date::text AS d`)[0].d);
  log(`DateStyle reads: ${days.join(',')}`);
  for (let i = 1; i <= 10; i++) await sql`INSERT INTO ${t} (id, v) VALUES (${i}, ${'v' + i})`;
  const reads = await Promise.all(Array.from({ length: 20 },
    (_, i) => sql`SELECT v FROM ${t} WHERE id = ${1 + (i % 10)}`));
  log(`reads in flight: ${reads.map((r) => r[0].v).join(',')}`);
  const seq = [];
  for (let i = 0; i < 10; i++) seq.push((await sql`SELECT v FROM ${t} WHERE id = ${1 + i}`)[0].v);
  log(`reads: ${seq.join(',')}`);
  const ryw = await sql.begin(async (tx) => {
    await tx`INSERT INTO ${t} (id, v) VALUES (${100}, ${'in tx'})`;
    return tx`SELECT v FROM ${t} WHERE id = ${100}`;
  });
  log(`read your write: ${fmt(ryw)}`);
  try {
    await sql.begin(async (tx) => {
      await tx`INSERT INTO ${t} (id, v) VALUES (${101}, ${'rolled back'})`;
      await tx`SELECT 1 / ${0}::int AS q`;
    });
    log('error in transaction: none');
  } catch (e) {
    log(`error in transaction: ${e.code}`);
  }
  log(`after rollback: ${fmt(await sql`SELECT count(*)::int AS n, sum(id)::int AS s FROM ${t}`)}`);
  await sql.end();
}

async function replay(config, table, log) {
  // A write hidden in a function, first thing in the session.
  const sql = open(config);
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await sql`SELECT ${sql(table + '_f')}() AS f`)[0].f);
  log(`SELECT f(): ${got.join(',')}`);
  log(`rows f wrote: ${fmt(await sql`SELECT count(*)::int AS n FROM ${sql(table)} WHERE v = 'f'`)}`);
  await sql.end();
}

async function waitForColumn(config, ports, table, column) {
  const end = Date.now() + 30000;
  for (const port of ports) {
    const sql = open(config, port);
    for (;;) {
      const [r] = await sql`SELECT count(*)::int AS n FROM pg_attribute
                            WHERE attrelid = ${table}::regclass AND attname = ${column}`;
      if (r.n === 1) break;
      if (Date.now() > end) throw new Error(`column ${column} did not reach port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await sql.end();
  }
}

async function shape(config, table, ports, log) {
  const sql = open(config);
  const t = sql(table);
  log(`before: ${fmt(await sql`SELECT * FROM ${t} WHERE id = ${1}`)}`);
  const other = open(config, ports[0]);
  await other.unsafe(`ALTER TABLE ${table} ADD COLUMN extra int`);
  await other.end();
  await waitForColumn(config, ports, table, 'extra');
  for (let i = 0; i < 3; i++) {
    try {
      log(`after ${i}: ${fmt(await sql`SELECT * FROM ${t} WHERE id = ${1}`)}`);
    } catch (e) {
      log(`after ${i}: ${e.code} ${e.message}`);
    }
  }
  await sql.end();
}

async function main() {
  const [configJson, table] = process.argv.slice(2);
  const config = JSON.parse(configJson);
  const out = [];
  const log = (line) => out.push(line);
  try {
    if (process.env.DRV_SCENARIO === 'shape') {
      await shape(config, table, process.env.DRV_SHAPE_PORTS.split(',').map(Number), log);
    } else {
      await guards(config, table, log);
      await replay(config, table, log);
    }
  } catch (e) {
    out.push(`unexpected: ${e.code} ${e.message}`);
  }
  console.log(out.join('\n'));
}

main();
