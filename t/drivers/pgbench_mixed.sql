-- A pgbench transaction for drivers_test.cc (-M prepared): a read, writes, reads of what this
-- client just wrote (checked with \if: a stale read aborts the client), a transaction block
-- and a plain read. Each client owns aids client_id*100+1 .. +100, so checks are exact.
\set aid :client_id * 100 + random(1, 100)
\set delta random(1, 1000)
SELECT abalance AS before FROM drv_bench WHERE aid = :aid \gset
UPDATE drv_bench SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO drv_bench_hist (aid, delta) VALUES (:aid, :delta);
SELECT abalance AS after FROM drv_bench WHERE aid = :aid \gset
\if :after != :before + :delta
SELECT 'read after write saw a stale balance'::int AS stale_read;
\endif
BEGIN;
SELECT abalance AS inside FROM drv_bench WHERE aid = :aid \gset
UPDATE drv_bench SET abalance = abalance - 1 WHERE aid = :aid;
INSERT INTO drv_bench_hist (aid, delta) VALUES (:aid, -1);
END;
\if :inside != :after
SELECT 'read in a transaction saw a stale balance'::int AS stale_tx_read;
\endif
SELECT count(*) AS accounts FROM drv_bench WHERE aid BETWEEN 1 AND 50 \gset
