"""A join storm against the running binaries, driven by Python grpcio stubs
generated from proto/ (a client nobody here wrote), then reconciliation of
every answer against what the services say and hold.

    storm.py setup   AUTH EVENT JOIN N        -> prints the event id; writes users.json
    storm.py storm   JOIN EVENT               -> joins with short deadlines, retries errors
    storm.py check   JOIN EVENT CAPACITY WAIT -> reconciles, prints counts, exits 1 on a defect

Deadlines are 20-250 ms, so many callers give up while their join is
queued or committing. Half the users send an idempotency key. Every user
whose answer was an error retries once with a long deadline (the same key
if they had one): the rule under test is that an error answer means no
seat was taken, or that the retry returns it.
"""
import json
import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc

sys.path.insert(0, os.environ["STUBS"])
from cityevents.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from cityevents.event.v1 import event_pb2, event_pb2_grpc  # noqa: E402
from cityevents.join.v1 import join_pb2, join_pb2_grpc  # noqa: E402
from google.protobuf import timestamp_pb2  # noqa: E402

STATE = os.environ["FAULTS_STATE"]
USERS = os.path.join(STATE, "users.json")
ANSWERS = os.path.join(STATE, "answers.json")
PASSWORD = "faults-password-1"


def md(token, key=None):
    m = [("authorization", f"Bearer {token}")]
    if key:
        m.append(("idempotency-key", key))
    return m


def setup(auth_addr, event_addr, join_addr, n):
    auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(auth_addr))
    emails = [f"faults-{uuid.uuid4().hex}@example.org" for _ in range(n + 1)]

    def register(email):
        auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="F"), timeout=60)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(register, emails))
    # The accounts are verified by the driver (psql), then signed in again.
    print("\n".join(emails), file=open(os.path.join(STATE, "emails.txt"), "w"))
    return emails


def login_all(auth_addr, emails):
    auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(auth_addr))

    def login(email):
        r = auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD), timeout=60)
        return {"email": email, "user_id": r.user.id, "token": r.session.access_token}

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(login, emails))


def create_event(event_addr, organizer, capacity, waitlist):
    events = event_pb2_grpc.EventServiceStub(grpc.insecure_channel(event_addr))
    start = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400)
    end = timestamp_pb2.Timestamp(seconds=int(time.time()) + 90000)
    draft = event_pb2.EventDraft(
        title="Fault storm", starts_at=start, ends_at=end, time_zone="Europe/Paris",
        online_url="https://example.org/live", capacity=capacity, waitlist_cap=waitlist,
    )
    e = events.CreateEvent(event_pb2.CreateEventRequest(draft=draft), metadata=md(organizer), timeout=10).event
    e = events.PublishEvent(
        event_pb2.PublishEventRequest(event_id=e.id, expected_version=e.version),
        metadata=md(organizer), timeout=10,
    ).event
    return e.id


def storm(join_addr, event_id):
    users = json.load(open(USERS))["users"]
    channels = [grpc.insecure_channel(join_addr) for _ in range(4)]
    stubs = [join_pb2_grpc.JoinServiceStub(c) for c in channels]
    answers = {}
    lock = threading.Lock()

    def one(i_user):
        i, u = i_user
        stub = stubs[i % len(stubs)]
        key = f"k-{uuid.uuid4().hex}" if i % 2 == 0 else None
        req = join_pb2.JoinRequest(event_id=event_id)
        first = {"key": key}
        try:
            r = stub.Join(req, metadata=md(u["token"], key), timeout=random.uniform(0.02, 0.25))
            first.update(ok=True, status=r.registration.status, id=r.registration.id)
        except grpc.RpcError as e:
            first.update(ok=False, code=e.code().name)
        retry = None
        if not first["ok"]:
            for _ in range(20):
                try:
                    r = stub.Join(req, metadata=md(u["token"], key), timeout=30)
                    retry = {"ok": True, "status": r.registration.status, "id": r.registration.id}
                    break
                except grpc.RpcError as e:
                    retry = {"ok": False, "code": e.code().name}
                    if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                        break
                    time.sleep(0.2)
        with lock:
            answers[u["user_id"]] = {"first": first, "retry": retry}

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(one, enumerate(users)))
    json.dump(answers, open(ANSWERS, "w"))
    errors = sum(1 for a in answers.values() if not a["first"]["ok"])
    print(f"storm: {len(answers)} joins, {errors} first answers were errors (retried)")


def check(join_addr, event_id, capacity, waitlist):
    users = json.load(open(USERS))
    answers = json.load(open(ANSWERS))
    stub = join_pb2_grpc.JoinServiceStub(grpc.insecure_channel(join_addr))
    CONFIRMED, WAITLISTED = join_pb2.REGISTRATION_STATUS_CONFIRMED, join_pb2.REGISTRATION_STATUS_WAITLISTED
    held, hidden, mismatched = {}, 0, 0
    for u in users["users"]:
        try:
            r = stub.GetRegistration(
                join_pb2.GetRegistrationRequest(event_id=event_id), metadata=md(u["token"]), timeout=10
            ).registration
            held[u["user_id"]] = (r.id, r.status)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
        a = answers[u["user_id"]]
        final = a["first"] if a["first"]["ok"] else (a["retry"] or {"ok": False})
        mine = held.get(u["user_id"])
        if mine and mine[1] in (CONFIRMED, WAITLISTED):
            # A place or entry: the user must have been told (first answer or retry).
            if not final.get("ok"):
                hidden += 1
            elif final["id"] != mine[0]:
                mismatched += 1
        elif final.get("ok"):
            mismatched += 1
    counts = stub.GetCounts(join_pb2.GetCountsRequest(event_id=event_id), timeout=10)
    confirmed = sum(1 for _, s in held.values() if s == CONFIRMED)
    waitlisted = sum(1 for _, s in held.values() if s == WAITLISTED)
    first_errors = sum(1 for a in answers.values() if not a["first"]["ok"])
    returned_by_retry = sum(
        1 for uid, a in answers.items() if not a["first"]["ok"] and (a["retry"] or {}).get("ok") and uid in held
    )
    print(
        f"reconciled: {len(users['users'])} users, {confirmed} confirmed (capacity {capacity}), "
        f"{waitlisted} waitlisted (cap {waitlist}); counts say {counts.confirmed}/{counts.waitlisted}; "
        f"{first_errors} first answers were errors, {returned_by_retry} of them held a place the retry returned; "
        f"{hidden} errors hiding a place, {mismatched} answers not matching what is held"
    )
    defects = []
    if confirmed > capacity:
        defects.append("overbooked")
    if waitlisted > waitlist:
        defects.append("waitlist over its cap")
    if (counts.confirmed, counts.waitlisted) != (confirmed, waitlisted):
        defects.append("counters disagree with registrations")
    if hidden or mismatched:
        defects.append("answers disagree with what is held")
    if defects:
        print("DEFECTS: " + ", ".join(defects))
        sys.exit(1)


def stream_check(nats_url, stream, registrations):
    """Every committed registration published exactly once: the stream holds
    one join.confirmed / join.waitlisted message per registration row."""
    import asyncio

    import nats

    async def subjects():
        nc = await nats.connect(nats_url)
        info = await nc.jetstream().stream_info(stream, subjects_filter=">")
        await nc.close()
        return info.state.subjects or {}

    per_subject = asyncio.run(subjects())
    published = sum(n for s, n in per_subject.items() if s.endswith(("join.confirmed", "join.waitlisted")))
    print(f"stream {stream}: {published} registration events for {registrations} registrations ({per_subject})")
    if published != registrations:
        print("DEFECTS: stream and database disagree")
        sys.exit(1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "register":
        setup(sys.argv[2], None, None, int(sys.argv[3]))
    elif cmd == "prepare":
        auth_addr, event_addr, capacity, waitlist = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        emails = open(os.path.join(STATE, "emails.txt")).read().split()
        signed = login_all(auth_addr, emails)
        organizer, users = signed[0], signed[1:]
        json.dump({"organizer": organizer, "users": users}, open(USERS, "w"))
        print(create_event(event_addr, organizer["token"], capacity, waitlist))
    elif cmd == "event":
        organizer = json.load(open(USERS))["organizer"]
        print(create_event(sys.argv[2], organizer["token"], int(sys.argv[3]), int(sys.argv[4])))
    elif cmd == "stream":
        stream_check(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "storm":
        storm(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
