-- A psql session for drivers_test.cc: variables, \copy both ways, multi-statement strings
-- (\; sends one Query), \gset/\if, errors that do not stop the script. Run in a directory
-- holding in.tsv; writes out.tsv and out.csv there. Table drv_psql exists and is empty.
\set ON_ERROR_STOP 0
\set n 50
\set label 'psql through a router'
SELECT :n * 2 AS doubled, :'label' AS label, upper(:'label') AS shout;
\copy drv_psql FROM 'in.tsv'
SELECT count(*), sum(id), sum(d) FROM drv_psql;
\copy (SELECT * FROM drv_psql ORDER BY id) TO 'out.tsv'
\copy drv_psql TO 'out.csv' WITH (FORMAT csv, HEADER)
SELECT count(*) AS rows_now FROM drv_psql \gset
\echo rows :rows_now
\if :{?rows_now}
  \echo rows_now is set
\endif
INSERT INTO drv_psql VALUES (:n + 100000, 'multi', 1) \; SELECT count(*) FROM drv_psql \; SELECT max(id) FROM drv_psql;
SET search_path = drv_nowhere, public \; SELECT count(*) AS via_search_path FROM drv_psql;
SHOW search_path;
SELECT 1 AS first \; SELECT 1/0 AS boom \; SELECT 3 AS never;
SELECT 'after error' AS still_here;
BEGIN;
UPDATE drv_psql SET t = 'updated' WHERE id <= :n;
SELECT count(*) FILTER (WHERE t = 'updated') AS in_tx FROM drv_psql;
ROLLBACK;
SELECT count(*) FILTER (WHERE t = 'updated') AS after_rollback FROM drv_psql;
\copy drv_psql FROM 'missing-file.tsv'
\copy drv_psql (id, t) FROM STDIN
900001	from stdin one
900002	from stdin two
\.
SELECT id, t FROM drv_psql WHERE id > 900000 ORDER BY id;
PREPARE drv_q(int) AS SELECT count(*) FROM drv_psql WHERE id < $1;
EXECUTE drv_q(:n);
EXECUTE drv_q(1000);
\set ON_ERROR_STOP 1
SELECT 'done' AS status;
