#!/usr/bin/env python3
"""An Alertmanager webhook receiver that records what it is sent.

The example receiver of Dashboards/alertmanager.yml, and the one the monitoring end-to-end test
(scripts/check-monitoring.sh) asserts against:

    python3 scripts/alert_webhook_receiver.py --port 9095 --log /tmp/lockproof-alerts.jsonl

POST (any path, e.g. /page or /ticket): an Alertmanager webhook payload (JSON, version 4). Every
alert in it is appended to --log as one JSON line: when it was received (Unix seconds), the path,
the notification's status and the alert's own (firing/resolved), its labels and annotations.
GET /alerts: those records as a JSON list. GET /healthz: "ok". Anything else: 404.
Stdlib only; listens on 127.0.0.1 unless --host says otherwise.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20  # Alertmanager batches alerts; a megabyte is far above what LockProof sends


def records_from_payload(payload, path, received_at):
    """One record per alert of a webhook payload; ValueError when it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
    records = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict):
            raise ValueError("an alert is not an object")
        labels = alert.get("labels") or {}
        records.append(
            {
                "received_at": received_at,
                "path": path,
                "receiver": payload.get("receiver"),
                "notification_status": payload.get("status"),
                "status": alert.get("status"),
                "alertname": labels.get("alertname"),
                "labels": labels,
                "annotations": alert.get("annotations") or {},
                "starts_at": alert.get("startsAt"),
                "ends_at": alert.get("endsAt"),
            }
        )
    return records


class Recorder:
    """The records received so far, in memory and appended to a file."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.lock = threading.Lock()
        self.records = []

    def add(self, records):
        with self.lock:
            self.records.extend(records)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    for record in records:
                        log.write(json.dumps(record, sort_keys=True) + "\n")

    def snapshot(self):
        with self.lock:
            return list(self.records)


def make_handler(recorder):
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status, body, content_type="application/json"):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/alerts":
                self._reply(200, json.dumps(recorder.snapshot()))
            elif self.path == "/healthz":
                self._reply(200, "ok\n", "text/plain")
            else:
                self._reply(404, "not found\n", "text/plain")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._reply(400, json.dumps({"error": f"body of {length} bytes"}))
                return
            try:
                payload = json.loads(self.rfile.read(length))
                records = records_from_payload(payload, self.path, time.time())
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                self._reply(400, json.dumps({"error": str(error)}))
                return
            recorder.add(records)
            self._reply(200, json.dumps({"recorded": len(records)}))

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass  # the log file is the record; no line per request on stderr

    return Handler


def make_server(host, port, log_path):
    recorder = Recorder(log_path)
    server = ThreadingHTTPServer((host, port), make_handler(recorder))
    server.daemon_threads = True
    return server, recorder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", help="append every received alert here as a JSON line")
    args = parser.parse_args(argv)
    server, _ = make_server(args.host, args.port, args.log)
    print(f"alert-webhook-receiver: listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
