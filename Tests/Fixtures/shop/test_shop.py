"""shop under concurrency: the correct build keeps every invariant, each bug switch breaks its own.

Every race starts its clients at one barrier and bounds every wait (conftest.race); `think_ms` widens
the window between a read and the write that depends on it, in the correct build as in the buggy
one (the correct build holds its locks across it).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg
import pytest
from conftest import SHOP, START_SECONDS, ShopProcess, first_line, race, scratch_database, start, stop

THINK_MS = 30


def seed(
    shop: ShopProcess,
    members: int = 1,
    point: int = 0,
    items: int = 2,
    price: int = 1000,
    remain: int = 100,
    coupon_max: int = 100,
    purchases: int = 0,
    qty: int = 1,
) -> None:
    """Members 1..N, items 1..M, coupon 1, and `purchases` CREATED purchases of member 1 (item 1 × qty)."""
    shop.sql(
        "INSERT INTO member (member_id, point) SELECT g, %s FROM generate_series(1, %s) g", (point, members)
    )
    shop.sql(
        "INSERT INTO item (item_id, unit_price, remain) SELECT g, %s, %s FROM generate_series(1, %s) g",
        (price, remain, items),
    )
    shop.sql("INSERT INTO coupon (coupon_id, max_count) VALUES (1, %s)", (coupon_max,))
    for _ in range(purchases):
        purchase_id = shop.one(
            "INSERT INTO purchase (member_id, amount) VALUES (1, %s) RETURNING purchase_id", (price * qty,)
        )
        shop.sql(
            "INSERT INTO purchase_line (purchase_id, item_id, qty, unit_price) VALUES (%s, 1, %s, %s)",
            (purchase_id, qty, price),
        )


# ---------------------------------------------------------------------------------- point charge


def charge_race(shop: ShopProcess, clients: int = 16, amount: int = 100) -> tuple[int, int]:
    seed(shop, point=1000)
    results = race(
        clients, lambda i: shop.request("POST", "/api/v2/point-charges", {"memberId": 1, "amount": amount})
    )
    acknowledged = sum(1 for r in results if r.status == 201)
    return 1000 + acknowledged * amount, shop.one("SELECT point FROM member WHERE member_id = 1")


def test_charge_keeps_every_acknowledged_charge(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    expected, point = charge_race(shop)
    assert point == expected == 1000 + 16 * 100
    assert shop.one("SELECT sum(delta) FROM point_history WHERE member_id = 1") == 16 * 100


def test_charge_without_lock_loses_updates(run_shop):
    shop = run_shop("charge-no-lock", think_ms=THINK_MS)
    expected, point = charge_race(shop)
    # Every charge was acknowledged and is in the history, yet the point lost some of them.
    assert expected == 1000 + 16 * 100
    assert point < expected
    assert shop.one("SELECT sum(delta) FROM point_history WHERE member_id = 1") == 16 * 100


def test_charge_with_one_request_id_applies_once(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    seed(shop, point=0)
    results = race(
        8,
        lambda i: shop.request(
            "POST",
            "/api/v2/point-charges",
            {"memberId": 1, "amount": 500},
            headers={"X-Request-Id": "order-7-topup"},
        ),
    )
    assert sorted(r.status for r in results) == [200] * 7 + [201]
    assert all(r.data["replayed"] for r in results if r.status == 200)
    assert shop.one("SELECT point FROM member WHERE member_id = 1") == 500
    assert shop.one("SELECT count(*) FROM point_history WHERE request_id = 'order-7-topup'") == 1


# ---------------------------------------------------------------------------------- coupon issue


def same_member_issue_race(shop: ShopProcess) -> list:
    seed(shop, coupon_max=100)
    return race(12, lambda i: shop.request("POST", "/api/v2/coupons/1/issues", {"memberId": 1}))


def test_coupon_issue_gives_one_per_member(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    results = same_member_issue_race(shop)
    assert Counter(r.status for r in results) == {201: 1, 409: 11}
    assert {r.code for r in results if r.status == 409} == {"ALREADY_ISSUED"}
    assert shop.one("SELECT count(*) FROM coupon_issue WHERE member_id = 1") == 1
    assert shop.one("SELECT issued_count FROM coupon WHERE coupon_id = 1") == 1


def test_coupon_issue_without_unique_constraint_issues_twice(run_shop):
    shop = run_shop("coupon-no-unique", think_ms=THINK_MS)
    results = same_member_issue_race(shop)
    rows = shop.one("SELECT count(*) FROM coupon_issue WHERE member_id = 1")
    assert rows > 1, "one coupon per member: the duplicate went through"
    assert sum(1 for r in results if r.status == 201) == rows


def test_coupon_issue_stops_at_the_quantity(run_shop):
    shop = run_shop(think_ms=5)
    seed(shop, members=40, coupon_max=10)
    results = race(40, lambda i: shop.request("POST", "/api/v2/coupons/1/issues", {"memberId": i + 1}))
    assert Counter(r.status for r in results) == {201: 10, 409: 30}
    assert {r.code for r in results if r.status == 409} == {"COUPON_EXHAUSTED"}
    assert shop.one("SELECT count(*) FROM coupon_issue") == 10
    assert shop.one("SELECT issued_count FROM coupon") == 10


# ---------------------------------------------------------------------------------- payment


def double_payment_race(shop: ShopProcess) -> list:
    seed(shop, point=100_000, purchases=1, price=7000, remain=50)
    return race(10, lambda i: shop.request("POST", "/api/v2/purchases/1/payment", {}))


def test_payment_is_taken_once(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    results = double_payment_race(shop)
    assert Counter(r.status for r in results) == {200: 1, 409: 9}
    assert {r.code for r in results if r.status == 409} == {"NOT_PAYABLE"}
    assert shop.one("SELECT point FROM member WHERE member_id = 1") == 100_000 - 7000
    assert shop.one("SELECT remain FROM item WHERE item_id = 1") == 49
    assert shop.one("SELECT count(*) FROM point_history WHERE ref = 'purchase:1'") == 1
    assert shop.one("SELECT state FROM purchase WHERE purchase_id = 1") == "PAID"


def test_payment_without_status_guard_charges_twice(run_shop):
    shop = run_shop("payment-no-status-guard", think_ms=THINK_MS)
    results = double_payment_race(shop)
    paid = sum(1 for r in results if r.status == 200)
    payments = shop.one("SELECT count(*) FROM point_history WHERE ref = 'purchase:1'")
    assert paid > 1 and payments == paid, "an order is paid once: it was paid several times"
    assert shop.one("SELECT point FROM member WHERE member_id = 1") == 100_000 - 7000 * paid
    assert shop.one("SELECT remain FROM item WHERE item_id = 1") == 50 - paid


def test_payment_refuses_insufficient_point_and_writes_nothing(run_shop):
    shop = run_shop()
    seed(shop, point=10, purchases=1)
    answer = shop.request("POST", "/api/v2/purchases/1/payment", {})
    assert (answer.status, answer.code) == (402, "NOT_ENOUGH_POINT")
    assert shop.one("SELECT point FROM member") == 10
    assert shop.one("SELECT state FROM purchase") == "CREATED"


# ---------------------------------------------------------------------------------- purchase creation


def crossing_purchases_race(shop: ShopProcess) -> list:
    seed(shop, members=1, items=2, remain=1000)
    return race(
        16,
        lambda i: shop.request(
            "POST",
            "/api/v2/purchases",
            {
                "memberId": 1,
                "lines": [{"itemId": 1, "qty": 1}, {"itemId": 2, "qty": 1}][:: 1 if i % 2 else -1],
            },
        ),
    )


def test_purchase_creation_locks_in_sorted_order_without_deadlock(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    results = crossing_purchases_race(shop)
    assert Counter(r.status for r in results) == {201: 16}
    assert shop.one("SELECT count(*) FROM purchase") == 16
    # Creation checks stock but does not take it (payment does).
    assert shop.one("SELECT sum(remain) FROM item") == 2000


def test_purchase_creation_with_unsorted_locks_deadlocks(run_shop):
    shop = run_shop("order-locks-unsorted", think_ms=THINK_MS)
    results = crossing_purchases_race(shop)
    deadlocks = [r for r in results if r.code == "DB_DEADLOCK"]
    assert deadlocks, "no deadlock: crossing lock orders should deadlock"
    assert all(r.status == 503 for r in deadlocks)
    # A deadlocked creation wrote nothing.
    assert shop.one("SELECT count(*) FROM purchase") == sum(1 for r in results if r.status == 201)


def test_purchase_creation_refuses_more_than_the_stock(run_shop):
    shop = run_shop()
    seed(shop, remain=3)
    answer = shop.request("POST", "/api/v2/purchases", {"memberId": 1, "lines": [{"itemId": 1, "qty": 4}]})
    assert (answer.status, answer.code) == (409, "OUT_OF_STOCK")
    created = shop.request("POST", "/api/v2/purchases", {"memberId": 1, "lines": [{"itemId": 1, "qty": 3}]})
    assert created.status == 201 and created.data["amount"] == 3000 and created.data["purchaseId"] == 1


# ---------------------------------------------------------------------------------- confirm / cancel


def confirm_cancel_race(shop: ShopProcess, purchases: int = 10) -> list:
    seed(shop, purchases=purchases)
    return race(
        2 * purchases,
        lambda i: shop.request(
            "POST", f"/api/v2/purchases/{i // 2 + 1}/{'confirmation' if i % 2 else 'cancellation'}", {}
        ),
    )


def test_confirm_and_cancel_have_one_winner(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    results = confirm_cancel_race(shop)
    assert Counter(r.status for r in results) == {200: 10, 409: 10}
    winners = {r.data["purchaseId"]: r.data["state"] for r in results if r.status == 200}
    stored = dict(shop.sql("SELECT purchase_id, state FROM purchase"))
    assert winners == stored


def test_confirm_and_cancel_without_guard_have_two_winners(run_shop):
    shop = run_shop("state-no-guard", think_ms=THINK_MS)
    results = confirm_cancel_race(shop)
    per_purchase = Counter(r.data["purchaseId"] for r in results if r.status == 200)
    assert max(per_purchase.values()) == 2, "one winner per race: both transitions were acknowledged"


# ---------------------------------------------------------------------------------- basket


def basket_race(shop: ShopProcess) -> tuple[int, int]:
    seed(shop)
    shop.sql("INSERT INTO basket (member_id, item_id, qty) VALUES (1, 1, 1)")
    results = race(16, lambda i: shop.request("PATCH", "/api/v2/members/1/basket/items/1", {"increase": 1}))
    return 1 + sum(1 for r in results if r.status == 200), shop.one("SELECT qty FROM basket")


def test_basket_keeps_every_increase(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    expected, qty = basket_race(shop)
    assert qty == expected == 17


def test_basket_read_then_write_loses_increases(run_shop):
    shop = run_shop("cart-lost-update", think_ms=THINK_MS)
    expected, qty = basket_race(shop)
    assert expected == 17 and qty < expected


# ---------------------------------------------------------------------------------- daily spending limit


def expense_race(shop: ShopProcess, clients: int = 16, price: int = 100) -> tuple[list, int]:
    """`clients` expenses of `price` by member 1, whose daily limit is 1000: (answers, the day's total)."""
    seed(shop)
    shop.sql("INSERT INTO spend_limit (member_id, limit_per_day) VALUES (1, 1000)")
    results = race(clients, lambda i: shop.request("POST", "/api/v2/members/1/expenses", {"price": price}))
    used = shop.one(
        "SELECT coalesce(sum(price), 0) FROM expense WHERE member_id = 1 AND spent_on = current_date"
    )
    return results, used


def test_expenses_stay_within_the_daily_limit(run_shop):
    shop = run_shop(think_ms=THINK_MS)
    results, used = expense_race(shop)
    assert Counter(r.status for r in results) == {201: 10, 409: 6}
    assert {r.code for r in results if r.status == 409} == {"DAILY_LIMIT_EXCEEDED"}
    assert used == 1000
    assert max(r.data["usedToday"] for r in results if r.status == 201) == 1000


def test_expenses_without_lock_skew_past_the_daily_limit(run_shop):
    # A wider window than the other races: the skew needs two expenses' snapshots to overlap, which a
    # loaded machine that runs the 16 clients one after another would not give within 30 ms.
    shop = run_shop("spend-no-lock", think_ms=5 * THINK_MS)
    results, used = expense_race(shop)
    acknowledged = sum(1 for r in results if r.status == 201)
    # No row was written twice, so REPEATABLE READ saw no conflict: every acknowledged expense is
    # in the table, and together they pass the limit.
    assert used == acknowledged * 100
    assert used > 1000


def test_an_expense_needs_a_member_with_a_limit_and_writes_nothing_otherwise(run_shop):
    shop = run_shop()
    seed(shop, members=2)
    shop.sql("INSERT INTO spend_limit (member_id, limit_per_day) VALUES (1, 500)")
    cases = [
        ({"price": 501}, 1, 409, "DAILY_LIMIT_EXCEEDED"),
        ({"price": 0}, 1, 422, "INVALID_FIELD"),
        ({"price": "5"}, 1, 422, "INVALID_FIELD"),
        ({"price": 5}, 2, 404, "LIMIT_NOT_SET"),
        ({"price": 5}, 99, 404, "MEMBER_NOT_FOUND"),
    ]
    for body, member, status, code in cases:
        answer = shop.request("POST", f"/api/v2/members/{member}/expenses", body)
        assert (answer.status, answer.code) == (status, code), (member, body)
    assert shop.one("SELECT count(*) FROM expense") == 0
    ok = shop.request("POST", "/api/v2/members/1/expenses", {"price": 500})
    assert ok.status == 201
    assert (ok.data["usedToday"], ok.data["limitPerDay"]) == (500, 500)


# ---------------------------------------------------------------------------------- API edges


def test_bad_requests_are_refused_and_write_nothing(run_shop):
    shop = run_shop()
    seed(shop, point=5)
    cases = [
        (("POST", "/api/v2/point-charges", {"memberId": 1, "amount": -5}), 422, "INVALID_FIELD"),
        (("POST", "/api/v2/point-charges", {"memberId": 1, "amount": True}), 422, "INVALID_FIELD"),
        (("POST", "/api/v2/point-charges", {"memberId": 99, "amount": 5}), 404, "MEMBER_NOT_FOUND"),
        (("POST", "/api/v2/coupons/7/issues", {"memberId": 1}), 404, "COUPON_NOT_FOUND"),
        (("POST", "/api/v2/purchases/42/payment", {}), 404, "PURCHASE_NOT_FOUND"),
        (("POST", "/api/v2/purchases", {"memberId": 1, "lines": []}), 422, "INVALID_LINES"),
        (("PATCH", "/api/v2/members/1/basket/items/9", {"increase": 1}), 404, "NOT_FOUND"),
        (("GET", "/api/v2/nothing", None), 404, "NO_SUCH_ROUTE"),
        (("GET", "/api/v2/point-charges", None), 405, "METHOD_NOT_ALLOWED"),
    ]
    for (method, path, body), status, code in cases:
        answer = shop.request(method, path, body)
        assert (answer.status, answer.code) == (status, code), (method, path, body)
    malformed = shop.request("POST", "/api/v2/point-charges", raw=b"{not json")
    assert (malformed.status, malformed.code) == (400, "MALFORMED_JSON")
    huge = shop.request("POST", "/api/v2/point-charges", raw=b" " * (64 * 1024 + 1))
    assert (huge.status, huge.code) == (413, "BODY_TOO_LARGE")
    assert shop.one("SELECT point FROM member") == 5
    assert shop.one("SELECT count(*) FROM point_history") == 0
    assert shop.request("GET", "/api/v2/members/1").data == {"memberId": 1, "point": 5}


def test_health_names_the_bugs_switched_on(run_shop):
    shop = run_shop("cart-lost-update", "charge-no-lock")
    assert shop.request("GET", "/health").data == {
        "status": "UP",
        "bugs": ["cart-lost-update", "charge-no-lock"],
    }


def test_unknown_bug_is_refused_with_exit_2():
    result = subprocess.run(
        [sys.executable, SHOP, "--database-url", "postgresql://x@127.0.0.1:1/x", "--bug", "no-such-bug"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "no-such-bug" in result.stderr and "charge-no-lock" in result.stderr


def test_lockproofs_own_database_is_refused(shop_db):
    with scratch_database("lockproof_shop_guard") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE lockproof_schema (version int)")
        process = start(url)
        try:
            assert process.wait(timeout=30) == 2
            assert "lockproof_schema" in process.stderr.read().decode()
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT to_regclass('public.member')").fetchone()[0] is None
        finally:
            stop(process)


@pytest.mark.parametrize("bug", ["coupon-no-unique", None])
def test_the_unique_constraint_follows_the_switch(run_shop, bug):
    shop = run_shop(*([bug] if bug else []))
    present = shop.one("SELECT count(*) FROM pg_constraint WHERE conname = 'coupon_issue_coupon_member_key'")
    assert present == (0 if bug else 1)


def test_first_line_is_bounded():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"], stdout=subprocess.PIPE)
    try:
        assert first_line(process, 0.2) == ""
    finally:
        stop(process)


def launch_second(first: ShopProcess) -> tuple:
    """Another instance on the same database (the schema exists; nothing is emptied)."""
    process = start(first.db_url, (), THINK_MS)
    line = first_line(process, START_SECONDS)
    if not line.startswith("shop: listening on "):
        stop(process)
        pytest.fail(f"the second shop did not start: {line!r}")
    SECOND_INSTANCES.append(process)
    return process, line.split()[3], first.db_url


SECOND_INSTANCES: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def stop_second_instances():
    yield
    while SECOND_INSTANCES:
        stop(SECOND_INSTANCES.pop())


def test_two_instances_share_the_database_locks(run_shop):
    """Two shop processes on one database, as a deployment runs them: the row lock still serialises."""
    first = run_shop(think_ms=THINK_MS)
    second = ShopProcess(*launch_second(first))
    seed(first, point=0)
    results = race(
        16,
        lambda i: (first if i % 2 else second).request(
            "POST", "/api/v2/point-charges", {"memberId": 1, "amount": 10}
        ),
    )
    assert Counter(r.status for r in results) == {201: 16}
    assert first.one("SELECT point FROM member WHERE member_id = 1") == 160


def test_a_session_killed_mid_transaction_is_an_unknown_outcome_and_the_pool_recovers(run_shop):
    shop = run_shop(think_ms=2000)
    seed(shop, point=0)
    answers: list = []
    worker = threading.Thread(
        target=lambda: answers.append(
            shop.request("POST", "/api/v2/point-charges", {"memberId": 1, "amount": 10})
        ),
        daemon=True,
    )
    worker.start()
    # Wait (bounded) until the charge holds its row lock inside its transaction, then end its session.
    deadline = time.monotonic() + 20
    holder = []
    while not holder and time.monotonic() < deadline:
        holder = shop.sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
        )
        time.sleep(0.02)
    assert holder, "the charge never reached its transaction"
    shop.sql("SELECT pg_terminate_backend(%s)", (holder[0][0],))
    worker.join(timeout=30)
    assert answers and (answers[0].status, answers[0].code) == (500, "INTERNAL")
    assert shop.one("SELECT point FROM member WHERE member_id = 1") == 0
    # The broken connection was dropped, not reused.
    after = shop.request("GET", "/api/v2/members/1")
    assert after.status == 200 and after.data["point"] == 0
