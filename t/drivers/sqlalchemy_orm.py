#!/usr/bin/python3
# SQLAlchemy (1.4 or later, over psycopg2) for drivers_test.cc: the ORM's unit of work
# (inserts flushed, read back in the same transaction, commit), a Core SET and read-back on
# one connection, bound-parameter reads reused many times, an error in a session then
# rollback, and `SELECT TABLE_f()` (a function that writes) in a session that has not
# written yet. Prints one line per observation; the test compares the output through
# pgrouter with a direct connection's.
# usage: sqlalchemy_orm.py CONNINFO TABLE   (TABLE exists, empty: id int PRIMARY KEY, v text;
#   TABLE_f() inserts a row)
import sys

import psycopg2
from sqlalchemy import Column, Integer, Text, create_engine, exc, func, select, text
from sqlalchemy.orm import Session, declarative_base
from sqlalchemy.pool import NullPool


def main(dsn, table):
    out = []

    def log(*parts):
        out.append(" ".join(str(p) for p in parts))

    engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(dsn),
                           poolclass=NullPool, future=True)
    Base = declarative_base()

    class Row(Base):
        __tablename__ = table
        id = Column(Integer, primary_key=True)
        v = Column(Text)

    # A write hidden in a function, first thing in the session.
    with engine.connect() as conn:
        log("SELECT f():", [conn.execute(text(f"SELECT {table}_f()")).scalar() for _ in range(3)])
        conn.commit()
        log("rows f wrote:", conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE v = 'f'")).scalar())
        conn.rollback()

    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SET DateStyle = 'SQL, DMY'"))
        log("DateStyle reads:",
            [conn.execute(text("SELECT '2024-03-05'::date::text")).scalar() for _ in range(12)])

    with Session(engine) as s:
        s.add_all([Row(id=i, v=f"v{i}") for i in range(1, 11)])
        s.flush()
        log("read your writes:", s.execute(select(func.count(), func.sum(Row.id))).one())
        s.commit()
    with Session(engine) as s:
        log("reads:", [s.execute(select(Row.v).where(Row.id == 1 + i % 10)).scalar()
                       for i in range(20)])
        s.rollback()
    with Session(engine) as s:
        s.add(Row(id=100, v="rolled back"))
        s.flush()
        try:
            s.execute(text("SELECT 1/0"))
        except exc.DBAPIError as e:
            log("error in transaction:", type(e).__name__, e.orig.pgcode)
        s.rollback()
        log("after rollback:", s.execute(select(func.count(), func.sum(Row.id))).one())
        s.rollback()
    with Session(engine) as s:
        s.add(Row(id=1, v="duplicate"))
        try:
            s.commit()
        except exc.IntegrityError as e:
            log("duplicate:", e.orig.pgcode)
            s.rollback()
        row = s.get(Row, 1)
        row.v = "updated"
        s.commit()
        log("after update:", s.execute(select(Row.v).where(Row.id == 1)).scalar())
        s.rollback()
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
