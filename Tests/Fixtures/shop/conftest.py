"""Fixtures of the shop tests: a database of shop's own on the throwaway PostgreSQL, a running shop
process (correct or with bugs switched on), an HTTP client, and a barrier race with bounded waits.

The PostgreSQL server is the one LOCKPROOF_DATABASE_URL names (scripts/with-services.sh starts it);
shop gets the database `lockproof_shop_fixture` on it, created here when missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SHOP = os.path.join(HERE, "shop.py")
DATABASE = "lockproof_shop_fixture"
TABLES = (
    "expense, spend_limit, basket, purchase_line, purchase, coupon_issue, coupon, item, point_history, member"
)
#: Bounds on every wait: a hung shop or request fails the test instead of hanging it.
START_SECONDS = 30
REQUEST_SECONDS = 30
RACE_SECONDS = 90


def database_url(name: str) -> str:
    base = os.environ.get("LOCKPROOF_DATABASE_URL")
    if not base:
        pytest.fail(
            "LOCKPROOF_DATABASE_URL is not set: run these tests through scripts/with-services.sh "
            "(make test-fixtures)"
        )
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(name: str) -> str:
    admin = psycopg.connect(os.environ.get("LOCKPROOF_DATABASE_URL", ""), autocommit=True, connect_timeout=10)
    with admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            # A name cannot be a bound parameter; this one is a constant of this file.
            admin.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


@pytest.fixture(scope="session")
def shop_db() -> str:
    return ensure_database(DATABASE)


@dataclass
class Response:
    status: int
    body: dict

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")

    @property
    def data(self) -> dict:
        return self.body.get("data") or {}


class ShopProcess:
    def __init__(self, process: subprocess.Popen, base_url: str, db_url: str):
        self.process = process
        self.base_url = base_url
        self.db_url = db_url

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as answer:
                return Response(answer.status, json.loads(answer.read()))
        except urllib.error.HTTPError as answer:
            return Response(answer.code, json.loads(answer.read() or b"{}"))

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.db_url, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def one(self, query: str, params: tuple = ()) -> object:
        return self.sql(query, params)[0][0]


def start(
    db_url: str, bugs: tuple[str, ...] = (), think_ms: float = 0, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    command = [
        sys.executable,
        SHOP,
        "--database-url",
        db_url,
        "--listen",
        "127.0.0.1:0",
        "--think-ms",
        str(think_ms),
        "--pool-size",
        "40",
        *extra,
    ]
    for bug in bugs:
        command += ["--bug", bug]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def first_line(process: subprocess.Popen, seconds: float) -> str:
    """The first line the process prints, waiting at most `seconds`."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(timeout=seconds):
            return ""
        return process.stdout.readline().decode().strip()
    finally:
        selector.close()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


@pytest.fixture
def run_shop(shop_db: str) -> Iterator[Callable[..., ShopProcess]]:
    """Starts shop with the bugs given, on emptied tables; stops every one started at the end."""
    started: list[subprocess.Popen] = []

    def launch(*bugs: str, think_ms: float = 0) -> ShopProcess:
        with psycopg.connect(shop_db, autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT to_regclass('public.member')").fetchone()[0] is not None:
                conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
        process = start(shop_db, bugs, think_ms)
        started.append(process)
        line = first_line(process, START_SECONDS)
        if not line.startswith("shop: listening on "):
            stop(process)
            pytest.fail(f"shop did not start: {line!r} {process.stderr.read().decode()[-2000:]}")
        return ShopProcess(process, line.split()[3], shop_db)

    yield launch
    for process in started:
        stop(process)


def race(count: int, work: Callable[[int], Response]) -> list[Response]:
    """`count` threads wait at one barrier, then each runs work(i); every wait is bounded."""
    barrier = threading.Barrier(count, timeout=RACE_SECONDS)
    results: list[Response | None] = [None] * count
    failures: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:  # reported below, with the test's own assertion
            failures.append(error)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RACE_SECONDS)
    assert not any(thread.is_alive() for thread in threads), (
        f"a client did not finish within {RACE_SECONDS} s"
    )
    assert not failures, f"a client failed: {failures[0]!r}"
    return [result for result in results if result is not None]


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A database made for one test and dropped after it."""
    url = ensure_database(name)
    try:
        yield url
    finally:
        with psycopg.connect(
            os.environ["LOCKPROOF_DATABASE_URL"], autocommit=True, connect_timeout=10
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
