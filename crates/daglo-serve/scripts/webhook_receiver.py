#!/usr/bin/env python3
"""A webhook receiver for the tests: verifies every delivery with the `standardwebhooks`
package (the Standard Webhooks reference library, not this project's code), once per secret.

    webhook_receiver.py SECRET[,SECRET...] FAIL_FIRST

Prints `{"port": N}` once listening on 127.0.0.1, then one JSON line per request: its
`webhook-id`, whether each secret verifies it, the how-manyth delivery of that id it is, the
answer given (500 for the first FAIL_FIRST deliveries of each id, then 204) and the payload.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

hooks = [Webhook(secret) for secret in sys.argv[1].split(",")]
fail_first = int(sys.argv[2])
seen = {}
# One report line at a time: `print` writes a line and its newline in two calls, so two
# handler threads answering at once could run their lines together and the test, reading
# line by line, would lose both.
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified = []
        for hook in hooks:
            try:
                hook.verify(body, headers)
                verified.append(True)
            except Exception:  # WebhookVerificationError, or a header missing
                verified.append(False)
        msg_id = headers.get("webhook-id", "")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with lock:
            seen[msg_id] = seen.get(msg_id, 0) + 1
            delivery = seen[msg_id]
            answer = 500 if delivery <= fail_first else 204
            sys.stdout.write(json.dumps({
                "id": msg_id,
                "verified": verified,
                "delivery": delivery,
                "answer": answer,
                "signatures": headers.get("webhook-signature", "").count("v1,"),
                "payload": payload,
            }) + "\n")
            sys.stdout.flush()
        self.send_response(answer)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the listen backlog (socketserver's default is 5)
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
