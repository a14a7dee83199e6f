#!/usr/bin/env python3
"""shop: an independent implementation of the six e-commerce cases, as a peer team would write it.

It is a test fixture for LockProof's black-box mode (issue 18): another API shape, another schema and
its own choice of locks than LockProof's core, so that a target file (targets/shop.yaml) has to
describe it rather than LockProof knowing it. Standard library HTTP server (a thread per connection,
HTTP/1.1 keep-alive) and psycopg 3.

    python3 shop.py --database-url postgresql://user@host:port/shop --listen 127.0.0.1:0 \
        [--bug charge-no-lock ...] [--think-ms 5] [--pool-size 16]

The first line on stdout is `shop: listening on http://HOST:PORT` (port 0 picks a free one).

It owns its tables (member, point_history, item, coupon, coupon_issue, purchase, purchase_line,
basket, spend_limit, expense, shop_schema) in the one database its URL names, creates them itself,
and refuses a database that holds LockProof's own tables (lockproof_schema). It touches no other database.

Classic bugs, one switch each (`--bug NAME`, repeatable, or SHOP_BUGS=a,b):
    charge-no-lock           point charge reads the point without a row lock, then writes read+amount
    coupon-no-unique         coupon_issue has no UNIQUE (coupon_id, member_id); the app's pre-check stays
    payment-no-status-guard  payment reads the purchase's state without a lock and never rechecks it
    order-locks-unsorted     purchase creation locks items in the order the request lists them
    state-no-guard           confirm/cancel read the state, then write without a version check
    cart-lost-update         basket increase reads the quantity, then writes read+increase
    spend-no-lock            an expense checks the day's total in REPEATABLE READ without locking the
                             member: concurrent expenses each see room and insert (write skew)
`--think-ms` (SHOP_THINK_MS) sleeps between a read and the write that depends on it, in every build,
to widen race windows: the correct build holds its locks across it.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pgerrors

BUGS = (
    "charge-no-lock",
    "coupon-no-unique",
    "payment-no-status-guard",
    "order-locks-unsorted",
    "state-no-guard",
    "cart-lost-update",
    "spend-no-lock",
)

MAX_BODY_BYTES = 64 * 1024
MAX_AMOUNT = 1_000_000_000
MAX_LINES = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS shop_schema (
    version int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS member (
    member_id bigint PRIMARY KEY,
    nickname text NOT NULL DEFAULT '',
    point bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS point_history (
    history_id bigserial PRIMARY KEY,
    member_id bigint NOT NULL REFERENCES member (member_id),
    delta bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT')),
    ref text,
    request_id text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS item (
    item_id bigint PRIMARY KEY,
    title text NOT NULL DEFAULT '',
    unit_price bigint NOT NULL,
    remain bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS coupon (
    coupon_id bigint PRIMARY KEY,
    title text NOT NULL DEFAULT '',
    max_count int NOT NULL,
    issued_count int NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS coupon_issue (
    issue_id bigserial PRIMARY KEY,
    coupon_id bigint NOT NULL REFERENCES coupon (coupon_id),
    member_id bigint NOT NULL REFERENCES member (member_id),
    issued_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS purchase (
    purchase_id bigserial PRIMARY KEY,
    member_id bigint NOT NULL REFERENCES member (member_id),
    state text NOT NULL DEFAULT 'CREATED' CHECK (state IN ('CREATED', 'PAID', 'DONE', 'CANCELED')),
    amount bigint NOT NULL,
    version int NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS purchase_line (
    purchase_id bigint NOT NULL REFERENCES purchase (purchase_id) ON DELETE CASCADE,
    item_id bigint NOT NULL REFERENCES item (item_id),
    qty int NOT NULL CHECK (qty > 0),
    unit_price bigint NOT NULL,
    PRIMARY KEY (purchase_id, item_id)
);
CREATE TABLE IF NOT EXISTS basket (
    member_id bigint NOT NULL REFERENCES member (member_id),
    item_id bigint NOT NULL REFERENCES item (item_id),
    qty int NOT NULL,
    PRIMARY KEY (member_id, item_id)
);
CREATE TABLE IF NOT EXISTS spend_limit (
    member_id bigint PRIMARY KEY REFERENCES member (member_id),
    limit_per_day bigint NOT NULL CHECK (limit_per_day >= 0)
);
CREATE TABLE IF NOT EXISTS expense (
    expense_id bigserial PRIMARY KEY,
    member_id bigint NOT NULL REFERENCES member (member_id),
    spent_on date NOT NULL,
    price bigint NOT NULL CHECK (price > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS expense_member_day ON expense (member_id, spent_on);
"""

#: The tables this service owns, children first (the order a TRUNCATE or DROP lists them in).
TABLES = (
    "expense",
    "spend_limit",
    "basket",
    "purchase_line",
    "purchase",
    "coupon_issue",
    "coupon",
    "item",
    "point_history",
    "member",
    "shop_schema",
)
UNIQUE_ISSUE = "coupon_issue_coupon_member_key"


class ShopError(Exception):
    """An answer other than success: HTTP status, a stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RefusedDatabase(Exception):
    """The database given is not one shop may own."""


class Busy(ShopError):
    def __init__(self) -> None:
        super().__init__(503, "BUSY", "no database connection became free in time")


class Pool:
    """A bounded pool of autocommit connections; a borrow waits at most `wait_seconds`."""

    def __init__(self, url: str, size: int, wait_seconds: float):
        self._url = url
        self._size = size
        self._wait = wait_seconds
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        # Nothing waits forever: a row lock is given up after 5 s, a statement after 15 s.
        conn.execute("SET lock_timeout = '5s'")
        conn.execute("SET statement_timeout = '15s'")
        return conn

    def borrow(self) -> psycopg.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            create = self._created < self._size
            if create:
                self._created += 1
        if create:
            try:
                return self.connect()
            except BaseException:
                with self._lock:
                    self._created -= 1
                raise
        try:
            return self._idle.get(timeout=self._wait)
        except queue.Empty:
            raise Busy() from None

    def give_back(self, conn: psycopg.Connection) -> None:
        healthy = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if healthy:
            self._idle.put(conn)
            return
        try:
            conn.close()
        finally:
            with self._lock:
                self._created -= 1

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class Shop:
    """The business logic: one method per route, each in one transaction."""

    def __init__(self, pool: Pool, bugs: frozenset[str], think_seconds: float):
        self.pool = pool
        self.bugs = bugs
        self.think_seconds = think_seconds

    def think(self) -> None:
        if self.think_seconds > 0:
            time.sleep(self.think_seconds)

    # -- point charge -----------------------------------------------------------------------------

    def charge(self, conn: psycopg.Connection, body: dict, request_id: str | None) -> tuple[int, dict]:
        member_id = positive(body, "memberId")
        amount = positive(body, "amount", MAX_AMOUNT)
        try:
            with conn.transaction():
                if request_id is not None:
                    done = conn.execute(
                        "SELECT history_id, member_id, delta FROM point_history WHERE request_id = %s",
                        (request_id,),
                    ).fetchone()
                    if done is not None:
                        return replayed_charge(conn, done, member_id, amount)
                lock = "" if "charge-no-lock" in self.bugs else " FOR UPDATE"
                row = conn.execute(
                    f"SELECT point FROM member WHERE member_id = %s{lock}", (member_id,)
                ).fetchone()
                if row is None:
                    raise ShopError(404, "MEMBER_NOT_FOUND", f"member {member_id} does not exist")
                self.think()
                point = row[0] + amount
                if point > MAX_AMOUNT * 1000:
                    raise ShopError(422, "POINT_LIMIT", "the point would exceed the limit")
                conn.execute("UPDATE member SET point = %s WHERE member_id = %s", (point, member_id))
                history_id = conn.execute(
                    "INSERT INTO point_history (member_id, delta, kind, request_id) "
                    "VALUES (%s, %s, 'CHARGE', %s) RETURNING history_id",
                    (member_id, amount, request_id),
                ).fetchone()[0]
        except pgerrors.UniqueViolation:
            # A racing request with the same X-Request-Id committed first: answer as its replay.
            done = conn.execute(
                "SELECT history_id, member_id, delta FROM point_history WHERE request_id = %s", (request_id,)
            ).fetchone()
            if done is None:
                raise
            return replayed_charge(conn, done, member_id, amount)
        return 201, {"historyId": history_id, "memberId": member_id, "point": point, "replayed": False}

    # -- coupon issue -----------------------------------------------------------------------------

    def issue(self, conn: psycopg.Connection, coupon_id: int, body: dict) -> tuple[int, dict]:
        member_id = positive(body, "memberId")
        try:
            with conn.transaction():
                # The cheap pre-check filters most repeats; UNIQUE (coupon_id, member_id) is what guarantees.
                if conn.execute(
                    "SELECT 1 FROM coupon_issue WHERE coupon_id = %s AND member_id = %s",
                    (coupon_id, member_id),
                ).fetchone():
                    raise ShopError(
                        409, "ALREADY_ISSUED", f"member {member_id} already has coupon {coupon_id}"
                    )
                if not conn.execute("SELECT 1 FROM member WHERE member_id = %s", (member_id,)).fetchone():
                    raise ShopError(404, "MEMBER_NOT_FOUND", f"member {member_id} does not exist")
                self.think()
                counted = conn.execute(
                    "UPDATE coupon SET issued_count = issued_count + 1 "
                    "WHERE coupon_id = %s AND issued_count < max_count RETURNING issued_count",
                    (coupon_id,),
                ).fetchone()
                if counted is None:
                    if not conn.execute("SELECT 1 FROM coupon WHERE coupon_id = %s", (coupon_id,)).fetchone():
                        raise ShopError(404, "COUPON_NOT_FOUND", f"coupon {coupon_id} does not exist")
                    raise ShopError(409, "COUPON_EXHAUSTED", f"coupon {coupon_id} has no more issues left")
                issue_id = conn.execute(
                    "INSERT INTO coupon_issue (coupon_id, member_id) VALUES (%s, %s) RETURNING issue_id",
                    (coupon_id, member_id),
                ).fetchone()[0]
        except pgerrors.UniqueViolation:
            raise ShopError(
                409, "ALREADY_ISSUED", f"member {member_id} already has coupon {coupon_id}"
            ) from None
        return 201, {"issueId": issue_id, "couponId": coupon_id, "issuedCount": counted[0]}

    # -- purchase creation ------------------------------------------------------------------------

    def create(self, conn: psycopg.Connection, body: dict) -> tuple[int, dict]:
        member_id = positive(body, "memberId")
        lines = body.get("lines")
        if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
            raise ShopError(422, "INVALID_LINES", f"lines must be a list of 1 to {MAX_LINES} objects")
        wanted: dict[int, int] = {}
        order: list[int] = []
        for index, line in enumerate(lines):
            if not isinstance(line, dict):
                raise ShopError(422, "INVALID_LINES", f"lines[{index}] must be an object")
            item_id = positive(line, "itemId", where=f"lines[{index}].")
            qty = positive(line, "qty", 10_000, where=f"lines[{index}].")
            if item_id not in wanted:
                order.append(item_id)
            wanted[item_id] = wanted.get(item_id, 0) + qty
        lock_order = order if "order-locks-unsorted" in self.bugs else sorted(order)
        with conn.transaction():
            if not conn.execute(
                "SELECT 1 FROM member WHERE member_id = %s FOR KEY SHARE", (member_id,)
            ).fetchone():
                raise ShopError(404, "MEMBER_NOT_FOUND", f"member {member_id} does not exist")
            prices: dict[int, int] = {}
            for item_id in lock_order:
                row = conn.execute(
                    "SELECT unit_price, remain FROM item WHERE item_id = %s FOR UPDATE", (item_id,)
                ).fetchone()
                if row is None:
                    raise ShopError(404, "ITEM_NOT_FOUND", f"item {item_id} does not exist")
                if row[1] < wanted[item_id]:
                    raise ShopError(409, "OUT_OF_STOCK", f"item {item_id} has {row[1]} left")
                prices[item_id] = row[0]
                self.think()
            amount = sum(prices[i] * wanted[i] for i in order)
            purchase_id = conn.execute(
                "INSERT INTO purchase (member_id, amount) VALUES (%s, %s) RETURNING purchase_id",
                (member_id, amount),
            ).fetchone()[0]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO purchase_line (purchase_id, item_id, qty, unit_price) "
                    "VALUES (%s, %s, %s, %s)",
                    [(purchase_id, i, wanted[i], prices[i]) for i in order],
                )
        return 201, {"purchaseId": purchase_id, "amount": amount, "state": "CREATED"}

    # -- payment ----------------------------------------------------------------------------------

    def pay(self, conn: psycopg.Connection, purchase_id: int) -> tuple[int, dict]:
        guard = "payment-no-status-guard" not in self.bugs
        with conn.transaction():
            lock = " FOR UPDATE" if guard else ""
            row = conn.execute(
                f"SELECT member_id, state, amount FROM purchase WHERE purchase_id = %s{lock}", (purchase_id,)
            ).fetchone()
            if row is None:
                raise ShopError(404, "PURCHASE_NOT_FOUND", f"purchase {purchase_id} does not exist")
            member_id, state, amount = row
            if state != "CREATED":
                raise ShopError(409, "NOT_PAYABLE", f"purchase {purchase_id} is {state}")
            self.think()
            point = conn.execute(
                "SELECT point FROM member WHERE member_id = %s FOR UPDATE", (member_id,)
            ).fetchone()[0]
            if point < amount:
                raise ShopError(
                    402, "NOT_ENOUGH_POINT", f"member {member_id} has {point} points, needs {amount}"
                )
            lines = conn.execute(
                "SELECT item_id, qty FROM purchase_line WHERE purchase_id = %s ORDER BY item_id",
                (purchase_id,),
            ).fetchall()
            for item_id, qty in lines:
                remain = conn.execute(
                    "SELECT remain FROM item WHERE item_id = %s FOR UPDATE", (item_id,)
                ).fetchone()[0]
                if remain < qty:
                    raise ShopError(409, "OUT_OF_STOCK", f"item {item_id} has {remain} left")
                conn.execute("UPDATE item SET remain = remain - %s WHERE item_id = %s", (qty, item_id))
            conn.execute("UPDATE member SET point = point - %s WHERE member_id = %s", (amount, member_id))
            conn.execute(
                "INSERT INTO point_history (member_id, delta, kind, ref) VALUES (%s, %s, 'PAYMENT', %s)",
                (member_id, -amount, f"purchase:{purchase_id}"),
            )
            conn.execute(
                "UPDATE purchase SET state = 'PAID', version = version + 1, updated_at = now() "
                "WHERE purchase_id = %s",
                (purchase_id,),
            )
        return 200, {"purchaseId": purchase_id, "state": "PAID", "paidAmount": amount}

    # -- confirm / cancel -------------------------------------------------------------------------

    def transition(self, conn: psycopg.Connection, purchase_id: int, target: str) -> tuple[int, dict]:
        with conn.transaction():
            row = conn.execute(
                "SELECT state, version FROM purchase WHERE purchase_id = %s", (purchase_id,)
            ).fetchone()
            if row is None:
                raise ShopError(404, "PURCHASE_NOT_FOUND", f"purchase {purchase_id} does not exist")
            state, version = row
            if state != "CREATED":
                raise ShopError(
                    409, "ILLEGAL_STATE", f"purchase {purchase_id} is {state}, cannot become {target}"
                )
            self.think()
            if "state-no-guard" in self.bugs:
                conn.execute(
                    "UPDATE purchase SET state = %s, version = version + 1, updated_at = now() "
                    "WHERE purchase_id = %s",
                    (target, purchase_id),
                )
            else:
                changed = conn.execute(
                    "UPDATE purchase SET state = %s, version = version + 1, updated_at = now() "
                    "WHERE purchase_id = %s AND version = %s",
                    (target, purchase_id, version),
                ).rowcount
                if changed != 1:
                    raise ShopError(
                        409, "CONCURRENT_MODIFICATION", f"purchase {purchase_id} changed meanwhile"
                    )
        return 200, {"purchaseId": purchase_id, "state": target}

    # -- basket -----------------------------------------------------------------------------------

    def add(self, conn: psycopg.Connection, member_id: int, item_id: int, body: dict) -> tuple[int, dict]:
        increase = positive(body, "increase", 10_000)
        try:
            with conn.transaction():
                if "cart-lost-update" in self.bugs:
                    row = conn.execute(
                        "SELECT qty FROM basket WHERE member_id = %s AND item_id = %s", (member_id, item_id)
                    ).fetchone()
                    self.think()
                    qty = (row[0] if row else 0) + increase
                    conn.execute(
                        "INSERT INTO basket (member_id, item_id, qty) VALUES (%s, %s, %s) "
                        "ON CONFLICT (member_id, item_id) DO UPDATE SET qty = EXCLUDED.qty",
                        (member_id, item_id, qty),
                    )
                else:
                    self.think()
                    qty = conn.execute(
                        "INSERT INTO basket (member_id, item_id, qty) VALUES (%s, %s, %s) "
                        "ON CONFLICT (member_id, item_id) DO UPDATE SET qty = basket.qty + EXCLUDED.qty "
                        "RETURNING qty",
                        (member_id, item_id, increase),
                    ).fetchone()[0]
        except pgerrors.ForeignKeyViolation:
            raise ShopError(
                404, "NOT_FOUND", f"member {member_id} or item {item_id} does not exist"
            ) from None
        return 200, {"memberId": member_id, "itemId": item_id, "qty": qty}

    # -- daily spending limit ---------------------------------------------------------------------

    def spend(self, conn: psycopg.Connection, member_id: int, body: dict) -> tuple[int, dict]:
        price = positive(body, "price", MAX_AMOUNT)
        no_lock = "spend-no-lock" in self.bugs
        with conn.transaction():
            if no_lock:
                # The bug: a snapshot instead of a lock. Each transaction sums the day in its own
                # snapshot; concurrent expenses insert different rows, so none of them conflicts.
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                lock = ""
            else:
                # The member row serializes a member's expenses; READ COMMITTED then sums every
                # expense committed before the lock was granted.
                lock = " FOR NO KEY UPDATE OF m"
            row = conn.execute(
                "SELECT l.limit_per_day FROM member m LEFT JOIN spend_limit l ON l.member_id = m.member_id "
                f"WHERE m.member_id = %s{lock}",
                (member_id,),
            ).fetchone()
            if row is None:
                raise ShopError(404, "MEMBER_NOT_FOUND", f"member {member_id} does not exist")
            if row[0] is None:
                raise ShopError(404, "LIMIT_NOT_SET", f"member {member_id} has no daily spending limit")
            limit_per_day = row[0]
            used = conn.execute(
                "SELECT coalesce(sum(price), 0)::bigint FROM expense "
                "WHERE member_id = %s AND spent_on = current_date",
                (member_id,),
            ).fetchone()[0]
            if used + price > limit_per_day:
                raise ShopError(
                    409,
                    "DAILY_LIMIT_EXCEEDED",
                    f"member {member_id} used {used} of {limit_per_day} today; {price} more would pass it",
                )
            self.think()
            expense_id = conn.execute(
                "INSERT INTO expense (member_id, spent_on, price) VALUES (%s, current_date, %s) "
                "RETURNING expense_id",
                (member_id, price),
            ).fetchone()[0]
        return 201, {
            "expenseId": expense_id,
            "memberId": member_id,
            "price": price,
            "usedToday": used + price,
            "limitPerDay": limit_per_day,
        }

    # -- reads ------------------------------------------------------------------------------------

    def member(self, conn: psycopg.Connection, member_id: int) -> tuple[int, dict]:
        row = conn.execute("SELECT point FROM member WHERE member_id = %s", (member_id,)).fetchone()
        if row is None:
            raise ShopError(404, "MEMBER_NOT_FOUND", f"member {member_id} does not exist")
        return 200, {"memberId": member_id, "point": row[0]}

    def purchase(self, conn: psycopg.Connection, purchase_id: int) -> tuple[int, dict]:
        row = conn.execute(
            "SELECT member_id, state, amount FROM purchase WHERE purchase_id = %s", (purchase_id,)
        ).fetchone()
        if row is None:
            raise ShopError(404, "PURCHASE_NOT_FOUND", f"purchase {purchase_id} does not exist")
        return 200, {"purchaseId": purchase_id, "memberId": row[0], "state": row[1], "amount": row[2]}


def replayed_charge(conn: psycopg.Connection, done: tuple, member_id: int, amount: int) -> tuple[int, dict]:
    history_id, done_member, done_amount = done
    if done_member != member_id or done_amount != amount:
        raise ShopError(422, "REQUEST_ID_REUSED", "this X-Request-Id was used for another charge")
    point = conn.execute("SELECT point FROM member WHERE member_id = %s", (member_id,)).fetchone()[0]
    return 200, {"historyId": history_id, "memberId": member_id, "point": point, "replayed": True}


def positive(body: dict, field: str, limit: int = 2**62, where: str = "") -> int:
    value = body.get(field)
    # bool is an int in Python; true is not a member id.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
        raise ShopError(422, "INVALID_FIELD", f"{where}{field} must be a whole number from 1 to {limit}")
    return value


ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/api/v2/point-charges"), "charge"),
    ("POST", re.compile(r"/api/v2/coupons/(\d{1,18})/issues"), "issue"),
    ("POST", re.compile(r"/api/v2/purchases"), "create"),
    ("POST", re.compile(r"/api/v2/purchases/(\d{1,18})/payment"), "pay"),
    ("POST", re.compile(r"/api/v2/purchases/(\d{1,18})/confirmation"), "confirm"),
    ("POST", re.compile(r"/api/v2/purchases/(\d{1,18})/cancellation"), "cancel"),
    ("PATCH", re.compile(r"/api/v2/members/(\d{1,18})/basket/items/(\d{1,18})"), "add"),
    ("POST", re.compile(r"/api/v2/members/(\d{1,18})/expenses"), "spend"),
    ("GET", re.compile(r"/api/v2/members/(\d{1,18})"), "member"),
    ("GET", re.compile(r"/api/v2/purchases/(\d{1,18})"), "purchase"),
    ("GET", re.compile(r"/health"), "health"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shop/1.0"
    shop: Shop  # set on the subclass that serve() makes
    timeout = 30  # an idle keep-alive connection is closed after this

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        if os.environ.get("SHOP_ACCESS_LOG"):
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, error: ShopError) -> None:
        self.reply(error.status, {"result": "FAIL", "error": {"code": error.code, "message": error.message}})

    def read_body(self) -> dict:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ShopError(411, "LENGTH_REQUIRED", "a body needs Content-Length")
        if int(length) > MAX_BODY_BYTES:
            # The body is not read: the connection cannot be reused.
            self.close_connection = True
            raise ShopError(413, "BODY_TOO_LARGE", f"a body may have at most {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ShopError(400, "MALFORMED_JSON", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ShopError(400, "MALFORMED_JSON", "the body must be a JSON object")
        return body

    def dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            for route_method, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    status, data = self.run(name, [int(g) for g in match.groups()])
                    self.reply(status, {"result": "SUCCESS", "data": data})
                    return
            if any(pattern.fullmatch(path) for _, pattern, _ in ROUTES):
                raise ShopError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path}")
            raise ShopError(404, "NO_SUCH_ROUTE", f"no route {path}")
        except ShopError as error:
            self.fail(error)
        except pgerrors.DeadlockDetected:
            self.fail(
                ShopError(503, "DB_DEADLOCK", "a deadlock was detected; nothing was written, try again")
            )
        except (pgerrors.LockNotAvailable, pgerrors.SerializationFailure):
            self.fail(ShopError(503, "DB_BUSY", "the database was busy; nothing was written, try again"))
        except Exception as error:  # a lost connection mid-commit: the outcome is unknown
            self.fail(ShopError(500, "INTERNAL", f"internal error ({type(error).__name__})"))

    def run(self, name: str, ids: list[int]) -> tuple[int, dict]:
        shop = self.shop
        body = self.read_body() if self.command in ("POST", "PATCH") else {}
        if name == "health":
            return 200, {"status": "UP", "bugs": sorted(shop.bugs)}
        conn = shop.pool.borrow()
        try:
            if name == "charge":
                request_id = self.headers.get("X-Request-Id")
                if request_id is not None and not 0 < len(request_id) <= 100:
                    raise ShopError(422, "INVALID_FIELD", "X-Request-Id must have 1 to 100 characters")
                return shop.charge(conn, body, request_id)
            if name == "issue":
                return shop.issue(conn, ids[0], body)
            if name == "create":
                return shop.create(conn, body)
            if name == "pay":
                return shop.pay(conn, ids[0])
            if name == "confirm":
                return shop.transition(conn, ids[0], "DONE")
            if name == "cancel":
                return shop.transition(conn, ids[0], "CANCELED")
            if name == "add":
                return shop.add(conn, ids[0], ids[1], body)
            if name == "spend":
                return shop.spend(conn, ids[0], body)
            if name == "member":
                return shop.member(conn, ids[0])
            return shop.purchase(conn, ids[0])
        finally:
            shop.pool.give_back(conn)


class Server(ThreadingHTTPServer):
    # listen()'s backlog: a barrier of clients connecting at once must not be reset.
    request_queue_size = 512
    daemon_threads = True


def create_schema(conn: psycopg.Connection, bugs: frozenset[str]) -> None:
    """Creates this service's tables (and only them) in the database it was given."""
    with conn.transaction():
        # Two instances starting together create the schema once.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('shop_schema'))")
        if conn.execute("SELECT to_regclass('public.lockproof_schema')").fetchone()[0] is not None:
            raise RefusedDatabase(
                "this database holds LockProof's own tables (lockproof_schema); "
                "give shop a database of its own"
            )
        conn.execute(SCHEMA)
        if not conn.execute("SELECT 1 FROM shop_schema").fetchone():
            conn.execute("INSERT INTO shop_schema (version) VALUES (1)")
        has_unique = (
            conn.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", (UNIQUE_ISSUE,)).fetchone()
            is not None
        )
        if "coupon-no-unique" in bugs and has_unique:
            conn.execute(f"ALTER TABLE coupon_issue DROP CONSTRAINT {UNIQUE_ISSUE}")
        elif "coupon-no-unique" not in bugs and not has_unique:
            if conn.execute(
                "SELECT 1 FROM coupon_issue GROUP BY coupon_id, member_id HAVING count(*) > 1"
            ).fetchone():
                raise RefusedDatabase(
                    "coupon_issue holds duplicate (coupon_id, member_id) rows from a run with "
                    "the coupon-no-unique bug; empty the table (TRUNCATE coupon_issue) first"
                )
            conn.execute(
                f"ALTER TABLE coupon_issue ADD CONSTRAINT {UNIQUE_ISSUE} UNIQUE (coupon_id, member_id)"
            )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="shop: a peer team's implementation of the six cases")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SHOP_DATABASE_URL"),
        help="postgresql:// URL of the database shop owns (SHOP_DATABASE_URL)",
    )
    parser.add_argument("--listen", default=os.environ.get("SHOP_LISTEN", "127.0.0.1:0"), help="HOST:PORT")
    parser.add_argument("--bug", action="append", default=[], choices=BUGS, help="switch a classic bug on")
    # String defaults go through `type` too: a bad SHOP_THINK_MS is a usage error (exit 2), not a traceback.
    parser.add_argument("--think-ms", type=float, default=os.environ.get("SHOP_THINK_MS", "0"))
    parser.add_argument("--pool-size", type=int, default=os.environ.get("SHOP_POOL_SIZE", "16"))
    args = parser.parse_args(argv)
    env_bugs = [b.strip() for b in os.environ.get("SHOP_BUGS", "").split(",") if b.strip()]
    unknown = [b for b in env_bugs if b not in BUGS]
    if unknown:
        parser.error(f"SHOP_BUGS names an unknown bug {unknown[0]!r}; known: {', '.join(BUGS)}")
    args.bug = frozenset(args.bug) | frozenset(env_bugs)
    if not args.database_url or not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url (or SHOP_DATABASE_URL) must be a postgresql:// URL")
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        parser.error(f"--listen {args.listen!r}: expected HOST:PORT")
    args.address = (host, int(port))
    if not 0 <= args.think_ms <= 10_000:
        parser.error(f"--think-ms {args.think_ms}: expected 0 to 10000")
    if not 1 <= args.pool_size <= 500:
        parser.error(f"--pool-size {args.pool_size}: expected 1 to 500")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    pool = Pool(args.database_url, args.pool_size, wait_seconds=10)
    try:
        conn = pool.connect()
    except psycopg.OperationalError as error:
        print(f"shop: cannot connect to the database: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    with conn:
        try:
            create_schema(conn, args.bug)
        except RefusedDatabase as error:
            print(f"shop: {error}", file=sys.stderr)
            return 2
    handler = type("BoundHandler", (Handler,), {"shop": Shop(pool, args.bug, args.think_ms / 1000)})
    try:
        server = Server(args.address, handler)
    except OSError as error:
        print(f"shop: cannot listen on {args.listen}: {error.strerror}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"shop: listening on http://{host}:{port} bugs={','.join(sorted(args.bug)) or 'none'}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
