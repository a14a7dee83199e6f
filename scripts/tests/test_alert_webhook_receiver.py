"""Tests of scripts/alert_webhook_receiver.py: a real server on a free port, real HTTP."""

import json
import os
import sys
import threading
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import alert_webhook_receiver as receiver  # noqa: E402

PAYLOAD = {
    "version": "4",
    "receiver": "page",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "LockProofRetriesExhausted",
                "case": "charge-balance",
                "severity": "page",
            },
            "annotations": {"description": "168 operation(s) of case charge-balance gave up"},
            "startsAt": "2026-12-04T17:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "LockProofCompensationFailed", "severity": "page"},
            "annotations": {},
            "startsAt": "2026-12-04T17:00:00Z",
            "endsAt": "2026-12-04T17:01:00Z",
        },
    ],
}


@pytest.fixture
def running(tmp_path):
    log = tmp_path / "alerts.jsonl"
    server, _ = receiver.make_server("127.0.0.1", 0, str(log))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", log
    server.shutdown()
    server.server_close()


def post(url, body):
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_records_every_alert_of_a_payload_in_memory_and_in_the_log(running):
    base, log = running
    assert post(base + "/page", json.dumps(PAYLOAD).encode()) == (200, {"recorded": 2})
    status, body = get(base + "/alerts")
    assert status == 200
    records = json.loads(body)
    assert [(r["alertname"], r["status"], r["path"], r["receiver"]) for r in records] == [
        ("LockProofRetriesExhausted", "firing", "/page", "page"),
        ("LockProofCompensationFailed", "resolved", "/page", "page"),
    ]
    assert records[0]["annotations"]["description"].startswith("168 operation(s)")
    assert all(isinstance(r["received_at"], float) for r in records)
    assert [json.loads(line) for line in log.read_text().splitlines()] == records


def test_refuses_what_is_not_a_webhook_payload_and_records_nothing(running):
    base, log = running
    for body in (b"not json", b'{"status": "firing"}', b'{"alerts": [1]}'):
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(base + "/page", body)
        assert refused.value.code == 400
    assert json.loads(get(base + "/alerts")[1]) == []
    assert not log.exists()


def test_health_and_unknown_paths(running):
    base, _ = running
    assert get(base + "/healthz") == (200, "ok\n")
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(base + "/nothing")
    assert missing.value.code == 404


def test_records_from_payload_keeps_labels_and_times():
    records = receiver.records_from_payload(PAYLOAD, "/ticket", 12.5)
    assert records[1]["ends_at"] == "2026-12-04T17:01:00Z"
    assert records[0]["labels"]["case"] == "charge-balance"
    assert {r["received_at"] for r in records} == {12.5}
    with pytest.raises(ValueError):
        receiver.records_from_payload([], "/page", 0)
