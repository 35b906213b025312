"""A local SMTP server that keeps every mail it receives as a file.

    smtp-catcher.py PORT DIR

Listens on 127.0.0.1:PORT (aiosmtpd, from PyPI) and writes each message to
DIR/<time>-<n>.eml, the envelope recipients in an `X-Catcher-To:` first
line. `make run` starts one (mail goes nowhere else by default); the mail
service's tests start their own. A recipient at the domain
`reject.invalid` is refused with a permanent 550 (for tests of permanent
failures).
"""
import asyncio
import itertools
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller

PORT, DIR = int(sys.argv[1]), sys.argv[2]
os.makedirs(DIR, exist_ok=True)
counter = itertools.count()


class Keep:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@reject.invalid"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{next(counter)}.eml"
        tmp = os.path.join(DIR, "." + name)
        with open(tmp, "wb") as f:
            f.write(b"X-Catcher-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(DIR, name))  # whole files only
        return "250 Message accepted"


controller = Controller(Keep(), hostname="127.0.0.1", port=PORT)
controller.start()
print(f"smtp catcher on 127.0.0.1:{PORT}, mails in {DIR}", flush=True)
stop = asyncio.Event()
loop = asyncio.new_event_loop()
for sig in (signal.SIGTERM, signal.SIGINT):
    loop.add_signal_handler(sig, stop.set)
loop.run_until_complete(stop.wait())
controller.stop()
