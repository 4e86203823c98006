# sqlite3 with a write-ahead log: the -wal and -shm files, checkpoints,
# a second connection reading while the first has written, VACUUM INTO.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x sqlite3 db.sqlite <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 2000)
INSERT INTO t(name, n) SELECT 'row' || i, i * i FROM c;
CREATE INDEX t_n ON t(n);
SQL
x sqlite3 db.sqlite 'SELECT count(*), sum(n) FROM t;'
x sqlite3 db.sqlite <<'SQL'
BEGIN;
UPDATE t SET n = n + 1 WHERE id % 2 = 0;
DELETE FROM t WHERE id % 7 = 0;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
x sqlite3 db.sqlite 'PRAGMA journal_mode; SELECT count(*), sum(n) FROM t; PRAGMA integrity_check;'
x sqlite3 db.sqlite "VACUUM INTO 'copy.sqlite';"
x sqlite3 copy.sqlite 'SELECT count(*), max(id) FROM t;'
finish
