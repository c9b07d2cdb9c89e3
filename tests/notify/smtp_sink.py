"""An SMTP server for the tests (aiosmtpd): prints `listening PORT`, then one JSON line per
message it accepted: {"from", "to", "subject", "body"}. With `--fail-first N` it answers the
first N messages with 451 (try again later), as a server in trouble does.
"""

import argparse
import email
import email.policy
import json
import socket
import sys
import time

from aiosmtpd.controller import Controller

parser = argparse.ArgumentParser()
parser.add_argument("--fail-first", type=int, default=0)
args = parser.parse_args()


class Sink:
    def __init__(self):
        self.failures_left = args.fail_first

    async def handle_DATA(self, server, session, envelope):
        if self.failures_left > 0:
            self.failures_left -= 1
            return "451 4.3.0 Try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        print(json.dumps({
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message["subject"]),
            "body": body.get_content() if body else "",
        }), flush=True)
        return "250 OK"


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print(f"listening {port}", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    controller.stop()
