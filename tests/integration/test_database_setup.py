"""The database at start-up: Alembic migrations, demo users seeded once, several processes
starting together, a database that is down at start, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sqlite3
from datetime import datetime

import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import IntegrityError

from tests.integration.helpers import assert_error
from tests.support.cache_db import (
    DB_KINDS,
    PG_ENV,
    Database,
    cache_env,
    fresh_postgres,
    make_database,
)
from tests.support.server import start_server, wait_for
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(params=DB_KINDS)
def database(request, tmp_path):
    with make_database(request.param, tmp_path / "db") as db:
        yield db


def _users(database: Database) -> int:
    return database.scalar("SELECT count(*) FROM users")


def test_first_start_migrates_and_seeds_once(database, server_env, tmp_path):
    env = cache_env(server_env, database, KK_DEMO_USERS="50")
    with start_server(tmp_path / "first", env) as srv, srv.client as client:
        assert database.scalar("SELECT version_num FROM alembic_version") == "0001_users"
        assert _users(database) == 50
        assert database.query(
            "SELECT id, name, email FROM users WHERE id IN (1, 50) ORDER BY id"
        ) == [
            (1, "User 1", "user1@example.com"),
            (50, "User 50", "user50@example.com"),
        ]
        assert client.get("/api/cache-demo/protection/50").status_code == 200
        assert_error(client.get("/api/cache-demo/protection/51"), 404, "USER_NOT_FOUND")
    created = database.scalar("SELECT created_at FROM users WHERE id = 1")
    # A restart (with another count) neither migrates again nor seeds a table with rows.
    with start_server(tmp_path / "again", {**env, "KK_DEMO_USERS": "80"}):
        assert _users(database) == 50
        assert database.scalar("SELECT created_at FROM users WHERE id = 1") == created
        assert database.scalar("SELECT count(*) FROM alembic_version") == 1


def test_the_schema_keeps_its_promises(database, server_env, tmp_path):
    env = cache_env(server_env, database, KK_DEMO_USERS="20", KK_CACHE_BLOOM_REFRESH_S="1")
    with start_server(tmp_path / "srv", env) as srv, srv.client as client:
        # Ids continue after the seeded ones (the PostgreSQL sequence was moved past them);
        # created_at defaults to now.
        new_id = database.scalar(
            "INSERT INTO users (name, email) VALUES ('New', 'new@example.com') RETURNING id"
        )
        assert new_id == 21
        with pytest.raises(IntegrityError):  # emails are unique
            database.query("INSERT INTO users (name, email) VALUES ('Twin', 'user3@example.com')")
        if database.kind == "postgresql":
            kind = database.scalar(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'users' AND column_name = 'created_at'"
            )
            assert kind == "timestamp with time zone"

        # The Bloom filter is rebuilt (here every second), so a user added behind the
        # service's back is found, with a timezone-aware creation time.
        def found():
            response = client.get(f"/api/cache-demo/protection/{new_id}")
            return response.json()["data"] if response.status_code == 200 else None

        user = wait_for(found, timeout=15, what="the new user to be found")
        assert user["user"]["email"] == "new@example.com"
        assert datetime.fromisoformat(user["user"]["createdAt"].replace("Z", "+00:00")).tzinfo


def test_two_processes_starting_together_migrate_and_seed_once(database, server_env, tmp_path):
    env = cache_env(server_env, database, KK_DEMO_USERS="300")
    managers = [start_server(tmp_path / name, env) for name in ("a", "b")]
    with contextlib.ExitStack() as stack, concurrent.futures.ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(stack.enter_context, managers))
        for srv in servers:
            with srv.client as client:
                assert client.get("/api/cache-demo/protection/300").status_code == 200
        assert _users(database) == 300
        assert database.scalar("SELECT count(*) FROM alembic_version") == 1
        assert sum(srv.log().count("Seeded 300 demo users") for srv in servers) == 1


def test_sqlite_in_the_data_dir_by_default(server_env, tmp_path):
    env = cache_env(server_env, Database("sqlite", ""), KK_DEMO_USERS="5")
    del env["KK_DATABASE_URL"]
    with start_server(tmp_path / "data", env) as srv, srv.client as client:
        assert client.get("/api/cache-demo/protection/5").status_code == 200
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "kk.sqlite3")) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (5,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.postgres
def test_a_database_down_at_start_is_retried_until_it_answers(server_env, tmp_path):
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    with fresh_postgres(base) as url:
        real = make_url(url)
        proxy = TcpProxy(f"{real.host or '127.0.0.1'}:{real.port or 5432}")  # not listening yet
        try:
            through = real.set(host="127.0.0.1", port=proxy.port)
            database = Database("postgresql", through.render_as_string(hide_password=False))
            env = cache_env(server_env, database, KK_DB_CONNECT_TIMEOUT_S="1")
            with start_server(tmp_path / "srv", env) as srv, srv.client as client:
                response = client.get("/api/cache-demo/protection/1")
                assert_error(response, 503, "DATABASE_CONNECTION_ERROR")
                assert client.put("/api/cache/still-works", json={"value": 1}).status_code == 200
                proxy.start()
                wait_for(
                    lambda: client.get("/api/cache-demo/protection/1").status_code == 200,
                    timeout=40,
                    what="the database to be prepared in the background",
                )
                assert "Database ready" in srv.log()
        finally:
            proxy.close()
