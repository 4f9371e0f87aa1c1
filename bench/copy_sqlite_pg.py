#!/usr/bin/env python3
"""Helper for bench/copy-sqlite-pg (not meant to be run on its own).

Subcommands:
  generate DB ROWS        create DB with table `events` holding ROWS rows
  export-csv DB CSV       write the rows of `events` to CSV (PostgreSQL \\copy format)
  db-url URL DBNAME       print URL with its database (path) replaced by DBNAME
  pgloader-url URL DBNAME the same, keeping only the query parameters that
                          pgloader's URI parser accepts (sslmode)
  redact URL              print URL with any password replaced by '***'

The data is deterministic: row i is always the same for a given i (values are
derived from multiplicative hashes of the id), so runs are comparable.
"""

import csv
import sqlite3
import sys
import urllib.parse

SCHEMA = """
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    label      TEXT,
    score      REAL,
    created_at TEXT,
    active     BOOLEAN
);
"""

# One recursive CTE inside SQLite (about 3.5 s per million rows on the 2-core
# bench machine; as fast as executemany of constant tuples, and the hashing,
# printf and datetime() all stay in C).
#  a, b, c   : three independent 32-bit hashes of the id (products stay < 2^63)
#  label     : 8..24 lowercase hex chars
#  score     : a 52-bit fraction scaled to [-5000, 5000): a double with ~17
#              significant digits, so a float4 column visibly loses precision
#  created_at: 'YYYY-MM-DD HH:MM:SS' within 2024
#  active    : 0/1
GENERATE = """
WITH RECURSIVE
  seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {rows}),
  h(i, a, b, c) AS (
    SELECT i,
           (i * 2654435761) % 4294967291,
           (i * 2246822519) % 4294967279,
           (i * 3266489917) % 4294967231
    FROM seq)
INSERT INTO events (id, account_id, label, score, created_at, active)
SELECT i,
       1 + a % 100000,
       substr(printf('%08x%08x%08x', c, a, b), 1, 8 + b % 17),
       ((a % 1048576) * 4294967296.0 + c) / 4503599627370496.0 * 10000.0 - 5000.0,
       datetime(1704067200 + b % 31536000, 'unixepoch'),
       (a / 7) % 2
FROM h;
"""


def generate(path: str, rows: int) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA page_size=8192")
    con.executescript(SCHEMA)
    con.execute("BEGIN")
    con.execute(GENERATE.format(rows=int(rows)))
    con.execute("COMMIT")
    (count,) = con.execute("SELECT count(*) FROM events").fetchone()
    con.close()
    if count != rows:
        sys.exit(f"generate: expected {rows} rows, got {count}")


def export_csv(path: str, out: str) -> None:
    # Python's csv module writes floats with repr(): the shortest string that
    # round-trips, so PostgreSQL gets exactly the same double. (The sqlite3
    # CLI's -csv mode would print only 15 significant digits.) NULL -> empty
    # unquoted field, which is NULL in PostgreSQL's CSV format.
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    cur = con.execute(
        "SELECT id, account_id, label, score, created_at, active FROM events ORDER BY id"
    )
    with open(out, "w", newline="", buffering=1 << 20) as f:
        w = csv.writer(f, lineterminator="\n")
        while True:
            batch = cur.fetchmany(50000)
            if not batch:
                break
            w.writerows(batch)
    con.close()


def db_url(url: str, dbname: str) -> str:
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(p._replace(path="/" + urllib.parse.quote(dbname)))


def pgloader_url(url: str, dbname: str) -> str:
    # pgloader rejects libpq parameters such as connect_timeout or
    # application_name; it understands sslmode.
    p = urllib.parse.urlsplit(db_url(url, dbname))
    query = [(k, v) for k, v in urllib.parse.parse_qsl(p.query) if k == "sslmode"]
    return urllib.parse.urlunsplit(p._replace(query=urllib.parse.urlencode(query)))


def redact(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    if p.password is None:
        return url
    netloc = p.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(p._replace(netloc=f"{user}:***@{netloc[1]}"))


def main(argv: list) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "generate" and len(args) == 2:
        generate(args[0], int(args[1]))
    elif cmd == "export-csv" and len(args) == 2:
        export_csv(args[0], args[1])
    elif cmd == "db-url" and len(args) == 2:
        print(db_url(args[0], args[1]))
    elif cmd == "pgloader-url" and len(args) == 2:
        print(pgloader_url(args[0], args[1]))
    elif cmd == "redact" and len(args) == 1:
        print(redact(args[0]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
