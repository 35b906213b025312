"""The product's main journey through the BFF, from outside, with clients
nobody here wrote: urllib (REST/JSON and server-sent events), grpcio stubs
generated from proto/, Python's email package reading the mails the SMTP
catcher kept, and the icalendar package reading invitations and feeds.

    journey.py BFF MAIL_DIR [HANDOFF_JSON]

sign up -> verify (the link from the mail) -> create and publish -> a typo'd search finds it (and
a second event is found near the Louvre) -> another user joins -> the
organizer's live stream (SSE and gRPC) sees the count change -> capacity
fills -> waitlist -> full -> a leave promotes (by mail, with the invitation) -> the event page names the
organizer -> my tickets -> check-in (once) -> the calendar feed (parsed by
the icalendar package) holds the event in its zone. With HANDOFF_JSON, a second
published event is written there for the gRPC-web journey (tests/grpc-web).
"""
import email.parser as email_parser
import email.policy as email_policy
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import datetime

import grpc
import icalendar

sys.path.insert(0, os.environ["STUBS"])
from cityevents.api.v1 import api_pb2, api_pb2_grpc  # noqa: E402
from cityevents.event.v1 import event_pb2  # noqa: E402
from cityevents.join.v1 import join_pb2  # noqa: E402

BFF, MAIL_DIR = sys.argv[1:3]
HANDOFF = sys.argv[3] if len(sys.argv) > 3 else None
BASE = f"http://{BFF}"
PASSWORD = "e2e journey password"


def rest(method, path, body=None, token=None, headers=None):
    """(status, json) of one REST call."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def get_text(path):
    """(status, content type, text) of a GET that answers something else than JSON."""
    try:
        with urllib.request.urlopen(BASE + path, timeout=20) as res:
            return res.status, res.headers.get("content-type"), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.read().decode()


def png(width, height):
    """A small gradient PNG, written by hand (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(width) for _ in range(3)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def upload(file, token):
    """(status, json) of a browser-style multipart upload."""
    body = (b"--e2e\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cover.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + file + b"\r\n--e2e--\r\n")
    req = urllib.request.Request(BASE + "/v1/media", data=body, method="POST")
    req.add_header("content-type", "multipart/form-data; boundary=e2e")
    req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ok(status, body, what):
    if status != 200:
        sys.exit(f"FAIL {what}: {status} {body}")
    return body


def mail_to(email, subject, timeout=20):
    """The first mail the SMTP catcher kept for `email` whose subject has
    `subject` in it, parsed with Python's email package."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name in sorted(os.listdir(MAIL_DIR)):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(MAIL_DIR, name), "rb") as f:
                first, raw = f.read().split(b"\r\n", 1)
            if first.decode() != f"X-Catcher-To: {email}":
                continue
            msg = email_parser.BytesParser(policy=email_policy.default).parsebytes(raw)
            if subject in msg["subject"]:
                return msg
        time.sleep(0.1)
    sys.exit(f"FAIL no mail {subject!r} to {email}")


def link_token(msg):
    """The one-time token of the link in a mail's plain-text part."""
    text = msg.get_body(preferencelist=("plain",)).get_content()
    return text.split("token=", 1)[1].split()[0]


def sign_up(name):
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.org"
    body = ok(*rest("POST", "/v1/account:signUp", {"email": email, "password": PASSWORD, "displayName": name}), "sign up")
    return body["user"]["id"], email, body["session"]["accessToken"], body["session"]["refreshToken"]


class Sse(threading.Thread):
    """Reads `GET /v1/events/{id}/live` and keeps every `data:` message."""

    def __init__(self, event_id):
        super().__init__(daemon=True)
        self.event_id, self.messages = event_id, []

    def run(self):
        req = urllib.request.Request(f"{BASE}/v1/events/{self.event_id}/live", headers={"accept": "text/event-stream"})
        with urllib.request.urlopen(req, timeout=60) as res:
            assert res.headers["content-type"] == "text/event-stream", res.headers
            for line in res:
                line = line.decode().strip()
                if line.startswith("data: "):
                    self.messages.append(json.loads(line[6:]))

    def wait_for(self, what, check, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(check(m) for m in list(self.messages)):
                return
            time.sleep(0.05)
        sys.exit(f"FAIL live (SSE) never showed {what}: {self.messages}")


def main():
    channel = grpc.insecure_channel(BFF)
    accounts = api_pb2_grpc.AccountServiceStub(channel)
    events = api_pb2_grpc.EventsServiceStub(channel)
    regs = api_pb2_grpc.RegistrationsServiceStub(channel)
    live = api_pb2_grpc.LiveServiceStub(channel)

    # Sign up (REST) and verify through the link the mail would carry.
    org_id, org_email, token, refresh = sign_up("organizer")
    mail = mail_to(org_email, "Confirm your email address")
    user = ok(*rest("POST", "/v1/account:verifyEmail", {"token": link_token(mail)}), "verify")["user"]
    assert user["emailVerified"] is True, user
    session = ok(*rest("POST", "/v1/account:refresh", {"refreshToken": refresh}), "refresh")["session"]
    token = session["accessToken"]
    print("signed up and verified", org_id)

    # Create and publish over native gRPC.
    auth = [("authorization", f"Bearer {token}")]
    now = int(time.time())
    draft = event_pb2.EventDraft(title="River jazz", time_zone="Europe/Paris", online_url="https://example.org/jazz",
                                 capacity=2, waitlist_cap=1)
    draft.starts_at.seconds, draft.ends_at.seconds = now + 86400, now + 90000
    # A cover uploaded as a browser form would, then set on the event once processed.
    status, image = upload(png(320, 200), token)
    assert status == 201, (status, image)
    draft.cover_image_ids.append(image["id"])
    for _ in range(100):
        try:
            created = events.CreateEvent(api_pb2.CreateEventRequest(draft=draft), metadata=auth, timeout=10).event
            break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            time.sleep(0.1)
    card = created.cover_images[0].card_url
    with urllib.request.urlopen(BASE + card, timeout=20) as res:
        assert res.headers["content-type"] == "image/webp" and res.headers["etag"], dict(res.headers)
        assert res.read()[8:12] == b"WEBP"
    print("cover uploaded and served", image["id"])
    event = events.PublishEvent(api_pb2.PublishEventRequest(event_id=created.id, expected_version=created.version),
                                metadata=auth, timeout=10).event
    assert event.status == event_pb2.EVENT_STATUS_PUBLISHED
    print("published", event.id)

    # Discovery: a typo'd search, read after the published version, finds it.
    q = (f"/v1/search?search.query=rivr%20jaz&search.readAfter.eventId={event.id}"
         f"&search.readAfter.version={event.version}")
    found = ok(*rest("GET", q), "typo search")["events"]
    assert [e["eventId"] for e in found] == [event.id], found
    assert found[0]["remaining"] == 2 and found[0]["online"] is True, found
    print("found by a typo'd search")

    # The organizer watches live: SSE and the gRPC server stream.
    sse = Sse(event.id)
    sse.start()
    stream = live.WatchEvent(api_pb2.WatchEventRequest(event_id=event.id), metadata=auth, timeout=60)
    first = next(stream)
    assert first.WhichOneof("update") == "event", first
    sse.wait_for("the current counts", lambda m: "counts" in m)

    # Another user joins over REST with an idempotency key; the retry is the same seat.
    guest_id, _, guest, _ = sign_up("guest")
    key = {"idempotency-key": f"e2e-{uuid.uuid4().hex}"}
    a = ok(*rest("POST", f"/v1/events/{event.id}/registration", {}, guest, key), "join")["registration"]
    b = ok(*rest("POST", f"/v1/events/{event.id}/registration", {}, guest, key), "join retry")["registration"]
    assert a["id"] == b["id"] and a["status"] == "REGISTRATION_STATUS_CONFIRMED", (a, b)
    sse.wait_for("one seat taken", lambda m: m.get("counts", {}).get("confirmed") == 1)
    for msg in stream:
        if msg.WhichOneof("update") == "counts" and msg.counts.confirmed == 1:
            break
    print("joined; the live streams saw it")

    # Capacity fills (gRPC), then the waitlist, then it is full.
    def grpc_join(tok):
        return regs.JoinEvent(api_pb2.JoinEventRequest(event_id=event.id), metadata=[("authorization", f"Bearer {tok}")],
                              timeout=10).registration
    _, _, second, _ = sign_up("second")
    assert grpc_join(second).status == join_pb2.REGISTRATION_STATUS_CONFIRMED
    _, third_email, third, _ = sign_up("third")
    waiting = grpc_join(third)
    assert waiting.status == join_pb2.REGISTRATION_STATUS_WAITLISTED and waiting.waitlist_position == 1, waiting
    _, _, fourth, _ = sign_up("fourth")
    status, err = rest("POST", f"/v1/events/{event.id}/registration", {}, fourth)
    assert status == 429 and err["reason"] == "WAITLIST_FULL", (status, err)
    try:
        grpc_join(fourth)
        sys.exit("FAIL a join past the waitlist cap was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
        assert dict(e.trailing_metadata()).get("x-cityevents-error") == "WAITLIST_FULL"
    sse.wait_for("a full event", lambda m: m.get("counts", {}).get("confirmed") == 2)
    print("capacity filled; waitlist holds one; the next is refused")

    # The guest leaves (REST): the waitlisted person is promoted.
    left = ok(*rest("DELETE", f"/v1/events/{event.id}/registration", token=guest), "leave")["registration"]
    assert left["status"] == "REGISTRATION_STATUS_CANCELLED", left
    mine = ok(*rest("GET", f"/v1/events/{event.id}/registration", token=third), "my registration")["registration"]
    assert mine["status"] == "REGISTRATION_STATUS_CONFIRMED" and mine["ticketCode"], mine
    page = ok(*rest("GET", f"/v1/events/{event.id}", token=third), "event page")
    assert page["counts"]["confirmed"] == 2 and page["myRegistration"]["id"] == mine["id"], page
    assert page["organizer"] == {"id": org_id, "displayName": "organizer"}, page
    tickets = ok(*rest("GET", "/v1/me/tickets", token=third), "my tickets")["tickets"]
    assert [t["registration"]["id"] for t in tickets] == [mine["id"]], tickets
    assert tickets[0]["eventTitle"] == "River jazz" and tickets[0]["registration"]["ticketCode"], tickets
    promoted = mail_to(third_email, "A place opened up")
    invitation = next(p for p in promoted.iter_attachments() if p.get_filename() == "invitation.ics")
    cal = icalendar.Calendar.from_ical(invitation.get_content())
    assert [str(c["UID"]) for c in cal.walk("VEVENT")] == [f"{event.id}@cityevents"], cal
    assert promoted["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", promoted
    print("a leave promoted the waitlist; the promoted person got the mail with the invitation")

    # Check-in at the door (gRPC), once; the ticket key is public.
    check = api_pb2.CheckInRequest(event_id=event.id, ticket_code=mine["ticketCode"])
    assert regs.CheckIn(check, metadata=auth, timeout=10).first_check_in is True
    assert regs.CheckIn(check, metadata=auth, timeout=10).first_check_in is False
    key = ok(*rest("GET", "/v1/tickets/key"), "ticket key")["key"]
    assert key["crv"] == "Ed25519", key
    print("checked in once; ticket key", key["kid"])
    stream.cancel()

    # The promoted person's calendar feed: a secret link, parsed by icalendar.
    path = ok(*rest("POST", "/v1/me/calendar-link", {}, third), "calendar link")["path"]
    deadline = time.time() + 10
    while True:
        status, ctype, text = get_text(path)
        assert status == 200 and ctype.startswith("text/calendar"), (status, ctype, text)
        if "BEGIN:VEVENT" in text or time.time() > deadline:
            break
        time.sleep(0.1)
    cal = icalendar.Calendar.from_ical(text)
    entries = [c for c in cal.walk("VEVENT") if str(c["UID"]) == f"{event.id}@cityevents"]
    assert len(entries) == 1, text
    start = entries[0]["DTSTART"].dt
    assert str(start.tzinfo) == "Europe/Paris", start
    assert start == datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc), (start, now)
    assert str(entries[0]["SUMMARY"]) == "River jazz"
    print("the calendar feed holds the event at", start.isoformat())

    # Hand a second published event to the gRPC-web journey (Node).
    if HANDOFF:
        # In person in Paris, so the Node journey can find it near the Louvre.
        draft.title, draft.capacity = "Web night", 1
        draft.venue.CopyFrom(event_pb2.Venue(name="Salle Pleyel", city="Paris", latitude=48.8771, longitude=2.3007))
        created = events.CreateEvent(api_pb2.CreateEventRequest(draft=draft), metadata=auth, timeout=10).event
        web = events.PublishEvent(api_pb2.PublishEventRequest(event_id=created.id, expected_version=created.version),
                                  metadata=auth, timeout=10).event
        # Near me over REST: 5 km around the Louvre, nearest first.
        q = ("/v1/search?search.near.latitude=48.8606&search.near.longitude=2.3376&search.near.radiusKm=5"
             f"&search.sort=SORT_DISTANCE&search.readAfter.eventId={web.id}&search.readAfter.version={web.version}")
        near = ok(*rest("GET", q), "near me")["events"]
        assert near and near[0]["eventId"] == web.id and 3.1 < near[0]["distanceKm"] < 3.4, near
        print("found near the Louvre over REST,", near[0]["distanceKm"], "km")
        with open(HANDOFF, "w") as f:
            json.dump({"eventId": created.id, "organizerName": "organizer"}, f)
    print("e2e journey passed")


if __name__ == "__main__":
    main()
