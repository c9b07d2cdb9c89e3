"""A webhook endpoint for the tests: verifies every message with the Standard Webhooks
reference library (an implementation independent of SafeGPT's) and keeps what it accepted.

Prints `listening PORT` on its first line. Control (JSON, from the test):
  POST /_control {"secret": "whsec_…", "status": 503, "delay_ms": 0}
      secret:   what the endpoint verifies with;
      status:   the answer to every valid message (2xx: accepted and kept);
      delay_ms: how long each answer takes.
  GET  /_received -> {"accepted": [{"id", "type", "seq", "body"}], "refused": n, "invalid": [reason]}
`/redirect…` answers 307 to /hook. Any other path is the endpoint.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

state = {"secret": None, "status": 200, "delay_ms": 0, "accepted": [], "refused": 0, "invalid": []}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b"{}"):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_received":
            with lock:
                body = json.dumps({k: state[k] for k in ("accepted", "refused", "invalid")}).encode()
            return self.answer(200, body)
        self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        data = self.rfile.read(length)
        if self.path == "/_control":
            with lock:
                state.update(json.loads(data))
            return self.answer(200)
        if self.path.startswith("/redirect"):
            self.send_response(307)
            self.send_header("location", "/hook")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        with lock:
            secret, status, delay = state["secret"], state["status"], state["delay_ms"]
        if delay:
            time.sleep(delay / 1000)
        try:
            payload = Webhook(secret).verify(data, dict(self.headers.items()))
        except (WebhookVerificationError, RuntimeError, ValueError) as e:
            with lock:
                state["invalid"].append(f"{self.headers.get('webhook-id')}: {e}")
            return self.answer(401, b'{"error": "invalid signature"}')
        if 200 <= status < 300:
            with lock:
                state["accepted"].append({
                    "id": self.headers["webhook-id"],
                    "type": payload["type"],
                    "seq": payload["data"].get("seq"),
                    "body": payload,
                })
        else:
            with lock:
                state["refused"] += 1
        self.answer(status, b'{"error": "unavailable"}' if status >= 300 else b"{}")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
