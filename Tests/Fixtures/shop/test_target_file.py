"""targets/shop.yaml describes shop truthfully: its reset, seed and state SQL run on shop's own schema
and return what the checkers read, and its requests, sent as the file says, get the outcomes the file
maps them to. A small reading of the format in Python (the Swift parser is LockProof's; this checks the
file against the real service, which the Swift tests cannot start).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

import psycopg
import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "..", "..", "..", "targets", "shop.yaml")
PLACEHOLDER = re.compile(r"\{([a-z_.]+)\}")


@pytest.fixture(scope="module")
def target() -> dict:
    with open(TARGET, encoding="utf-8") as file:
        return yaml.safe_load(file)


def bound(sql: str) -> str:
    """`:name` as psycopg's `%(name)s` (shop.yaml's seed statements have no quoted colons or casts)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)


def statements(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def render(template: object, arguments: dict, items: list[tuple[int, int]]) -> object:
    if isinstance(template, dict):
        if set(template) == {"$each_item"}:
            return [
                render(template["$each_item"], {**arguments, "item.product": p, "item.quantity": q}, [])
                for p, q in items
            ]
        rendered = {k: render(v, arguments, items) for k, v in template.items()}
        return {k: v for k, v in rendered.items() if v is not None}
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            return arguments.get(whole.group(1))
        if any(name not in arguments for name in PLACEHOLDER.findall(template)):
            return None
        return PLACEHOLDER.sub(lambda m: str(arguments[m.group(1)]), template)
    return template


def evaluate(path: str, body: object) -> object:
    current = body
    for key, index in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]", path[1:]):
        if key and isinstance(current, dict) and key in current:
            current = current[key]
        elif index and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        else:
            return None
    return current


def status_matches(spec: object, status: int) -> bool:
    specs = spec if isinstance(spec, list) else [spec]
    return any(
        s == status or (isinstance(s, str) and s.endswith("xx") and str(status)[0] == s[0]) for s in specs
    )


def perform(
    target: dict, base_url: str, operation: str, arguments: dict, items: list[tuple[int, int]] = ()
) -> tuple[str, str | None, dict]:
    spec = target["operations"][operation]
    request = spec["request"]
    headers = {**target["http"]["headers"], **(request.get("headers") or {})}
    headers = {k: v for k, v in ((k, render(v, arguments, [])) for k, v in headers.items()) if v is not None}
    body = json.dumps(render(request["body"], arguments, list(items))).encode() if "body" in request else None
    path = render(request["path"], arguments, [])
    http = urllib.request.Request(base_url + path, data=body, method=request["method"], headers=headers)
    try:
        with urllib.request.urlopen(http, timeout=10) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        status, raw = answer.code, answer.read()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    for rule in spec["responses"] + target["responses"]:
        if not status_matches(rule["status"], status):
            continue
        if any(
            parsed is None or evaluate(path, parsed) != value
            for path, value in (rule.get("when") or {}).items()
        ):
            continue
        result = {
            k: (v if isinstance(v, int) else evaluate(v, parsed))
            for k, v in (rule.get("result") or {}).items()
        }
        return rule["outcome"], rule.get("reason"), result
    return target["otherwise"]["outcome"], target["otherwise"]["reason"], {}


def test_shop_target_drives_shop_and_reads_its_state(run_shop, target):
    shop = run_shop()
    with psycopg.connect(shop.db_url, autocommit=True) as conn:
        for sql in statements(target["reset"]):
            conn.execute(sql)
        seed = target["seed"]
        rows = {
            "users": [{"id": u, "balance": 1000} for u in (1, 2, 3)],
            "products": [{"id": p, "price": 1000, "stock": 10} for p in (1, 2)],
            "coupons": [{"id": 1, "quantity": 5}],
            "orders": [{"id": o, "user": 1, "total": 1000} for o in (1, 2)],
            "order_items": [{"order": o, "product": 1, "quantity": 1, "price": 1000} for o in (1, 2)],
            "cart_lines": [{"user": 1, "product": 1, "quantity": 1}],
            "spending_limits": [{"user": u, "daily_limit": 1000} for u in (1, 2)],
        }
        for kind, values in rows.items():
            for sql in statements(seed[kind]):
                for value in values:
                    conn.execute(bound(sql), value)
        for sql in statements(seed["after"]):
            conn.execute(sql)

    url = shop.base_url
    assert perform(target, url, "charge", {"user": 1, "amount": 500}) == (
        "ok",
        None,
        {"balance": 1500, "applied": 1},
    )
    keyed = {"user": 1, "amount": 300, "key": "k-1"}
    assert perform(target, url, "charge", keyed) == ("ok", None, {"balance": 1800, "applied": 1})
    assert perform(target, url, "charge", keyed) == ("ok", None, {"balance": 1800, "applied": 0})
    assert perform(target, url, "charge", {"user": 99, "amount": 1}) == ("fail", "not_found", {})
    assert perform(target, url, "issue", {"user": 1, "coupon": 1}) == ("ok", None, {"issued_quantity": 1})
    assert perform(target, url, "issue", {"user": 1, "coupon": 1}) == ("fail", "already_issued", {})
    outcome, _, created = perform(target, url, "create", {"user": 2}, [(2, 1), (1, 1)])
    assert (outcome, created["total"]) == ("ok", 2000)
    assert created["order"] == 3, "the seed's `after` moved the sequence past the seeded orders"
    assert perform(target, url, "create", {"user": 2}, [(1, 11)]) == ("fail", "insufficient_stock", {})
    assert perform(target, url, "pay", {"order": 1}) == ("ok", None, {"amount": 1000})
    assert perform(target, url, "pay", {"order": 1}) == ("fail", "order_not_payable", {})
    assert perform(target, url, "complete", {"order": 2}) == ("ok", None, {})
    assert perform(target, url, "cancel", {"order": 2}) == ("fail", "invalid_transition", {})
    assert perform(target, url, "add", {"user": 1, "product": 1, "quantity": 2}) == (
        "ok",
        None,
        {"quantity": 3},
    )
    assert perform(target, url, "pay", {"order": 42}) == ("fail", "not_found", {})
    assert perform(target, url, "spend", {"user": 1, "amount": 600}) == ("ok", None, {"spent_today": 600})
    assert perform(target, url, "spend", {"user": 1, "amount": 400}) == ("ok", None, {"spent_today": 1000})
    assert perform(target, url, "spend", {"user": 1, "amount": 1}) == ("fail", "daily_limit_exceeded", {})
    assert perform(target, url, "spend", {"user": 3, "amount": 1}) == ("fail", "not_found", {})

    def query(kind: str) -> list[dict]:
        with psycopg.connect(shop.db_url, autocommit=True) as conn:
            cursor = conn.execute(target["state"][kind])
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    balances = {r["user"]: r["balance"] for r in query("balances")}
    assert balances == {1: 1000 + 500 + 300 - 1000, 2: 1000, 3: 1000}
    ledger = query("balance_ledger")
    assert {r["reason"] for r in ledger} == {"charge", "payment"}
    for user, balance in balances.items():
        assert sum(r["delta"] for r in ledger if r["user"] == user) == balance - 1000
    assert [r["reference"] for r in ledger if r["reason"] == "payment"] == ["order:1"]
    assert [r["reference"] for r in ledger if r["reason"] == "charge" and r["delta"] == 300] == ["k-1"]
    assert {r["product"]: r["stock"] for r in query("stock")} == {1: 9, 2: 10}
    orders = {r["order"]: (r["user"], r["total"], r["status"]) for r in query("orders")}
    assert orders == {1: (1, 1000, "PAID"), 2: (1, 1000, "COMPLETED"), 3: (2, 2000, "PENDING")}
    items = sorted((r["order"], r["product"], r["quantity"]) for r in query("order_items"))
    assert items == [(1, 1, 1), (2, 1, 1), (3, 1, 1), (3, 2, 1)]
    assert query("coupons") == [{"coupon": 1, "total": 5, "issued": 1}]
    assert query("coupon_issues") == [{"coupon": 1, "user": 1}]
    assert query("cart_lines") == [{"user": 1, "product": 1, "quantity": 3}]
    assert sorted((r["user"], r["daily_limit"]) for r in query("spending_limits")) == [(1, 1000), (2, 1000)]
    spends = query("spends")
    assert sorted((r["user"], r["amount"]) for r in spends) == [(1, 400), (1, 600)]
    assert len({r["day"] for r in spends}) == 1
    # What the file leaves unmapped is what shop does not have.
    assert set(target["state"]) == {
        "balances",
        "balance_ledger",
        "stock",
        "orders",
        "order_items",
        "coupons",
        "coupon_issues",
        "cart_lines",
        "spending_limits",
        "spends",
    }
