// node-pg for drivers_test.cc: named prepared statements ({name, text, values}) for writes
// and reads, reused many times, one that fails and is used again, queries queued without
// waiting, a transaction, and `SELECT TABLE_f()` (a function that writes) as a named
// statement in a session that has not written yet. With DRV_SCENARIO=shape, runs only the
// changed-shape scenario: a named SELECT *, ALTER TABLE ... ADD COLUMN from another
// connection (DRV_SHAPE_PORTS=primary,standby,...: then every node has it), the statement
// again. Takes pairs
// CONNINFO-JSON TABLE (each TABLE exists: id int PRIMARY KEY, v text; empty, or with the row
// (1, 'one') for the shape scenario; TABLE_f() inserts a row) and prints, per pair, "== run N" and one line per observation.
// Needs `pg` on NODE_PATH (make installs it into build/node_modules).
'use strict';
const { Client } = require('pg');

async function run(config, table, log) {
  const client = new Client(config);
  await client.connect();
  const insert = (id, v) => client.query({
    name: 'drv-insert',
    text: `INSERT INTO ${table} (id, v) VALUES ($1, $2) RETURNING id`,
    values: [id, v],
  });
  const read = (id) => client.query({
    name: 'drv-read',
    text: `SELECT v FROM ${table} WHERE id = $1`,
    values: [id],
  });
  const count = () => client.query({
    name: 'drv-count',
    text: `SELECT count(*)::int AS n, coalesce(sum(id), 0)::int AS s FROM ${table}`,
  });

  // Settings before any write (reads then use the standbys): a simple-protocol SET, then a
  // SET as a named statement.
  await client.query("SET DateStyle = 'German'");
  const day = () => client.query({ name: 'drv-day', text: "SELECT '2024-03-05'::date::text AS d" });
  const days = [];
  for (let i = 0; i < 12; i++) days.push((await day()).rows[0].d);
  log(`date after SET: ${days.join(',')}`);
  await client.query({ name: 'drv-set-zone', text: "SET TimeZone = 'Asia/Tokyo'" });
  const zones = [];
  for (let i = 0; i < 12; i++) {
    const zone = { name: 'drv-zone', text: "SELECT current_setting('TimeZone') AS z" };
    zones.push((await client.query(zone)).rows[0].z);
  }
  log(`TimeZone after a named SET: ${zones.join(',')}`);

  const ids = [];
  for (let i = 1; i <= 10; i++) ids.push((await insert(i, `v${i}`)).rows[0].id);
  log(`named inserts: ${ids.join(',')}`);
  const values = [];
  for (let i = 1; i <= 10; i++) values.push((await read(i)).rows[0].v);
  log(`named reads: ${values.join(',')}`);
  for (let i = 0; i < 4; i++) log(`count: ${JSON.stringify((await count()).rows[0])}`);

  // Queued without waiting: pg sends them one after another on the same connection.
  const queued = await Promise.all([read(3), insert(11, 'queued'), read(11), count()]);
  log(`queued: ${JSON.stringify(queued.map((r) => r.rows))}`);

  const divide = (d) => client.query({ name: 'drv-divide', text: 'SELECT 10 / $1::int AS q', values: [d] });
  try {
    await divide(0);
    log('divide by zero: no error');
  } catch (e) {
    log(`divide by zero: ${e.code}`);
  }
  log(`divide again: ${JSON.stringify((await divide(5)).rows)}`);
  try {
    await insert(1, 'duplicate');
  } catch (e) {
    log(`duplicate: ${e.code}`);
  }
  log(`read after errors: ${(await read(1)).rows[0].v}`);

  await client.query('BEGIN');
  await insert(20, 'in tx');
  log(`in transaction: ${(await read(20)).rows[0].v}`);
  await client.query('ROLLBACK');
  log(`after rollback: ${JSON.stringify((await read(20)).rows)}`);
  // An error inside a transaction: later statements fail until ROLLBACK.
  await client.query('BEGIN');
  await insert(21, 'in a failed tx');
  for (const step of [() => divide(0), () => read(21)]) {
    try {
      await step();
      log('in a failed transaction: no error');
    } catch (e) {
      log(`in a failed transaction: ${e.code}`);
    }
  }
  await client.query('ROLLBACK');
  log(`after the failed transaction: ${JSON.stringify((await read(21)).rows)}`);
  for (let i = 0; i < 3; i++) log(`final count: ${JSON.stringify((await count()).rows[0])}`);
  await client.end();
}

// A write hidden in a function, first thing in the session, as a named statement.
async function replay(config, table, log) {
  const client = new Client(config);
  await client.connect();
  const got = [];
  for (let i = 0; i < 5; i++) {
    got.push((await client.query({ name: 'drv-f', text: `SELECT ${table}_f() AS f` })).rows[0].f);
  }
  log(`named f(): ${got.join(',')}`);
  const n = await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE v = 'f'`);
  log(`rows f wrote: ${JSON.stringify(n.rows)}`);
  await client.end();
}

async function shape(config, table, ports, log) {
  const client = new Client(config);
  await client.connect();
  const star = () => client.query({ name: 'drv-star', text: `SELECT * FROM ${table} WHERE id = $1`, values: [1] });
  for (let i = 0; i < 2; i++) log(`before: ${JSON.stringify((await star()).rows)}`);
  const other = new Client({ ...config, port: ports[0] });
  await other.connect();
  await other.query(`ALTER TABLE ${table} ADD COLUMN extra int`);
  await other.end();
  const end = Date.now() + 30000;
  for (const port of ports) {
    const node = new Client({ ...config, port });
    await node.connect();
    const has = `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attname = 'extra'`;
    while ((await node.query(has)).rows[0].n !== 1) {
      if (Date.now() > end) throw new Error(`no column on ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await node.end();
  }
  for (let i = 0; i < 3; i++) {
    try {
      log(`after ${i}: ${JSON.stringify((await star()).rows)}`);
    } catch (e) {
      log(`after ${i}: ${e.code} ${e.message}`);
    }
  }
  await client.end();
}

async function main() {
  const args = process.argv.slice(2);
  const out = [];
  for (let i = 0; i + 1 < args.length; i += 2) {
    out.push(`== run ${i / 2 + 1}`);
    try {
      const log = (line) => out.push(line);
      if (process.env.DRV_SCENARIO === 'shape') {
        await shape(JSON.parse(args[i]), args[i + 1], process.env.DRV_SHAPE_PORTS.split(',').map(Number), log);
      } else {
        await run(JSON.parse(args[i]), args[i + 1], log);
        await replay(JSON.parse(args[i]), args[i + 1], log);
      }
    } catch (e) {
      out.push(`unexpected: ${e.code} ${e.message}`);
    }
  }
  console.log(out.join('\n'));
}

main();
