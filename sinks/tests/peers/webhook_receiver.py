"""A webhook receiver that checks every delivery with the official Standard
Webhooks verifier (the `standardwebhooks` package) before accepting it.

Usage: webhook_receiver.py SECRET [PORT] — prints its port, then serves:
POST /         verify, then answer the status in the event's
               attributes.respond (default 200; 503 adds Retry-After: 3),
               or 200 to everything after POST /control {"accept_all": true};
               400 to an event holding the text of {"refuse": TEXT};
               an unverifiable delivery answers 401
POST /control  {"accept_all": true|false, "refuse": TEXT|null}
GET  /         the deliveries accepted so far, as JSON
GET  /refused  why each unverifiable delivery was refused, as JSON
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

hook = Webhook(sys.argv[1])
accepted = []
unverifiable = []
mode = {"accept_all": False, "refuse": None}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/control":
            mode.update(json.loads(body))
            return self.answer(200, mode)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            event = hook.verify(body, headers)
        except Exception as e:  # the verifier's refusal is the answer
            unverifiable.append(f"{headers.get('webhook-id')}: {e}")
            return self.answer(401, {"error": str(e)})
        status = 200 if mode["accept_all"] else int(event.get("attributes", {}).get("respond", 200))
        if mode["refuse"] and mode["refuse"] in body.decode():
            status = 400
        if 200 <= status < 300:
            accepted.append({"webhook_id": headers["webhook-id"], "event": event})
        extra = {"Retry-After": "3"} if status == 503 else {}
        self.answer(status, {}, extra)

    def do_GET(self):
        self.answer(200, unverifiable if self.path == "/refused" else accepted)

    def answer(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
