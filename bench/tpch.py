#!/usr/bin/env python3
"""bench/tpch.py: the TPC-H schema for bench/tpch, spelled for SQLite, PostgreSQL and MySQL.

Declared types as in the TPC-H specification (identifiers INTEGER, money DECIMAL(15,2), dates
DATE, every text TEXT), composite primary keys for partsupp and lineitem, and the foreign keys
the specification names. SQLite gets its keys inline (it cannot add them afterwards);
PostgreSQL and MySQL get keyless tables and the key statements separately, so that the same
text serves the `\\copy` ceiling (keys after the load) and the sources (keys declared).

Usage:
  tpch.py tables DIALECT         CREATE TABLE statements (sqlite: with keys; pg, mysql: without)
  tpch.py keys DIALECT           primary keys, then foreign keys, then ANALYZE (pg, mysql)
  tpch.py names                  the table names, parents first
  tpch.py load-sqlite CSV_DIR DB load the generator's CSVs into a new SQLite file
"""
import os
import subprocess
import sys

# (table, [(column, type)], primary key, [(columns, parent, parent columns)])
I, D, DT, T = "INTEGER", "DECIMAL(15,2)", "DATE", "TEXT"
TABLES = [
    ("region", [("r_regionkey", I), ("r_name", T), ("r_comment", T)], ["r_regionkey"], []),
    (
        "nation",
        [("n_nationkey", I), ("n_name", T), ("n_regionkey", I), ("n_comment", T)],
        ["n_nationkey"],
        [(["n_regionkey"], "region", ["r_regionkey"])],
    ),
    (
        "part",
        [
            ("p_partkey", I), ("p_name", T), ("p_mfgr", T), ("p_brand", T), ("p_type", T),
            ("p_size", I), ("p_container", T), ("p_retailprice", D), ("p_comment", T),
        ],
        ["p_partkey"],
        [],
    ),
    (
        "supplier",
        [
            ("s_suppkey", I), ("s_name", T), ("s_address", T), ("s_nationkey", I),
            ("s_phone", T), ("s_acctbal", D), ("s_comment", T),
        ],
        ["s_suppkey"],
        [(["s_nationkey"], "nation", ["n_nationkey"])],
    ),
    (
        "partsupp",
        [
            ("ps_partkey", I), ("ps_suppkey", I), ("ps_availqty", I), ("ps_supplycost", D),
            ("ps_comment", T),
        ],
        ["ps_partkey", "ps_suppkey"],
        [(["ps_partkey"], "part", ["p_partkey"]), (["ps_suppkey"], "supplier", ["s_suppkey"])],
    ),
    (
        "customer",
        [
            ("c_custkey", I), ("c_name", T), ("c_address", T), ("c_nationkey", I),
            ("c_phone", T), ("c_acctbal", D), ("c_mktsegment", T), ("c_comment", T),
        ],
        ["c_custkey"],
        [(["c_nationkey"], "nation", ["n_nationkey"])],
    ),
    (
        "orders",
        [
            ("o_orderkey", I), ("o_custkey", I), ("o_orderstatus", T), ("o_totalprice", D),
            ("o_orderdate", DT), ("o_orderpriority", T), ("o_clerk", T),
            ("o_shippriority", I), ("o_comment", T),
        ],
        ["o_orderkey"],
        [(["o_custkey"], "customer", ["c_custkey"])],
    ),
    (
        "lineitem",
        [
            ("l_orderkey", I), ("l_partkey", I), ("l_suppkey", I), ("l_linenumber", I),
            ("l_quantity", D), ("l_extendedprice", D), ("l_discount", D), ("l_tax", D),
            ("l_returnflag", T), ("l_linestatus", T), ("l_shipdate", DT), ("l_commitdate", DT),
            ("l_receiptdate", DT), ("l_shipinstruct", T), ("l_shipmode", T), ("l_comment", T),
        ],
        ["l_orderkey", "l_linenumber"],
        [
            (["l_orderkey"], "orders", ["o_orderkey"]),
            (["l_partkey", "l_suppkey"], "partsupp", ["ps_partkey", "ps_suppkey"]),
        ],
    ),
]


def native(ty, dialect):
    # PostgreSQL and MySQL get BIGINT: what ferry makes of SQLite's INTEGER, so that every
    # source and the ceiling load the same column types into PostgreSQL.
    return "BIGINT" if ty == I and dialect != "sqlite" else ty


def tables(dialect):
    out = []
    for name, cols, pk, fks in TABLES:
        parts = [f"{c} {native(t, dialect)} NOT NULL" for c, t in cols]
        if dialect == "sqlite":
            parts.append(f"PRIMARY KEY ({', '.join(pk)})")
            parts += [
                f"FOREIGN KEY ({', '.join(c)}) REFERENCES {p} ({', '.join(pc)})"
                for c, p, pc in fks
            ]
        engine = " ENGINE=InnoDB" if dialect == "mysql" else ""
        out.append(f"CREATE TABLE {name} ({', '.join(parts)}){engine};")
    return out


def keys(dialect):
    out = [f"ALTER TABLE {n} ADD PRIMARY KEY ({', '.join(pk)});" for n, _, pk, _ in TABLES]
    for name, _, _, fks in TABLES:
        for c, p, pc in fks:
            out.append(
                f"ALTER TABLE {name} ADD FOREIGN KEY ({', '.join(c)}) REFERENCES {p} ({', '.join(pc)});"
            )
    analyze = "ANALYZE TABLE" if dialect == "mysql" else "ANALYZE"
    out += [f"{analyze} {n};" for n, _, _, _ in TABLES]
    return out


def load_sqlite(csv_dir, db):
    if os.path.exists(db):
        os.remove(db)
    script = ["PRAGMA journal_mode = OFF;", "PRAGMA synchronous = OFF;"] + tables("sqlite")
    # The sqlite3 shell's CSV import applies each column's affinity, as an application's
    # inserts would: DECIMAL(15,2) values become integers or reals, dates stay text.
    for name, *_ in TABLES:
        script.append(f".import --csv --skip 1 {os.path.join(csv_dir, name + '.csv')} {name}")
    subprocess.run(["sqlite3", db], input="\n".join(script) + "\n", text=True, check=True)


def main():
    cmd = sys.argv[1:2]
    if cmd == ["tables"]:
        print("\n".join(tables(sys.argv[2])))
    elif cmd == ["keys"]:
        print("\n".join(keys(sys.argv[2])))
    elif cmd == ["names"]:
        print(" ".join(n for n, *_ in TABLES))
    elif cmd == ["load-sqlite"]:
        load_sqlite(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
