// The BFF journey over gRPC-web from Node, as a browser app makes it: a
// client generated from proto/ by protoc-gen-es, sent through
// @connectrpc/connect-web's gRPC-web transport (fetch, HTTP/1.1, binary
// frames), unary calls and the server stream alike. No request is written
// by hand.
//
//   node journey.mjs BFF_URL HANDOFF_JSON
//
// HANDOFF_JSON names a published event (capacity 1, waitlist 1) whose
// organizer signed up and verified in the Python journey.
//
// two people sign up -> the first watches the event live -> joins with an
// idempotency key (the retry is the same seat) and the stream sees the seat
// go -> the second is waitlisted -> the event page names the organizer and
// holds the caller's registration -> my tickets lists the ticket -> a leave
// promotes the second -> the event is found near the Louvre and by a typo'd
// search -> errors arrive as codes with their reasons.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import assert from "node:assert/strict";

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import {
  AccountService,
  DiscoveryService,
  EventsService,
  LiveService,
  RegistrationsService,
} from "./gen/cityevents/api/v1/api_pb.js";
import { Sort } from "./gen/cityevents/feed/v1/feed_pb.js";
import { RegistrationStatus } from "./gen/cityevents/join/v1/join_pb.js";

const [baseUrl, handoffFile] = process.argv.slice(2);
const { eventId, organizerName } = JSON.parse(readFileSync(handoffFile, "utf8"));

const transport = createGrpcWebTransport({ baseUrl, defaultTimeoutMs: 20_000 });
const accounts = createClient(AccountService, transport);
const events = createClient(EventsService, transport);
const registrations = createClient(RegistrationsService, transport);
const live = createClient(LiveService, transport);
const discovery = createClient(DiscoveryService, transport);

const bearer = (token) => ({ headers: { authorization: `Bearer ${token}` } });

async function signUp(name) {
  const res = await accounts.signUp({
    email: `${name}-${randomUUID().slice(0, 8)}@example.org`,
    password: "grpc-web journey password",
    displayName: name,
  });
  return res.session.accessToken;
}

/** Rejects with the ConnectError of `call`, which must fail. */
async function failure(call) {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  assert.fail("the call was expected to fail");
}

/** Keeps every message of the live stream and resolves waits on them. */
class Watch {
  constructor(token) {
    this.messages = [];
    this.waiters = [];
    this.abort = new AbortController();
    this.done = this.read(token);
  }

  async read(token) {
    const stream = live.watchEvent({ eventId }, { ...bearer(token), signal: this.abort.signal, timeoutMs: 60_000 });
    try {
      for await (const msg of stream) {
        this.messages.push(msg.update);
        this.waiters = this.waiters.filter((w) => !w.check(msg.update) || (w.resolve(), false));
      }
    } catch (e) {
      if (!this.abort.signal.aborted) throw e;
    }
  }

  until(what, check, ms = 10_000) {
    if (this.messages.some(check)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`live stream never showed ${what}`)), ms);
      this.waiters.push({ check, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  close() {
    this.abort.abort();
    return this.done;
  }
}

const confirmed = (n) => (u) => u.case === "counts" && u.value.confirmed === n;

async function main() {
  const first = await signUp("web-first");
  const second = await signUp("web-second");
  console.log("signed up two people over gRPC-web");

  const watch = new Watch(first);
  await watch.until("the event first", (u) => u.case === "event" && u.value.id === eventId);
  await watch.until("the current counts", confirmed(0));

  const key = { headers: { ...bearer(first).headers, "idempotency-key": `web-${randomUUID()}` } };
  const a = (await registrations.joinEvent({ eventId }, key)).registration;
  const b = (await registrations.joinEvent({ eventId }, key)).registration;
  assert.equal(a.status, RegistrationStatus.CONFIRMED);
  assert.equal(a.id, b.id, "the keyed retry returns the same seat");
  await watch.until("the seat taken", confirmed(1));
  console.log("joined; the server stream saw the seat go");

  const waiting = (await registrations.joinEvent({ eventId }, bearer(second))).registration;
  assert.equal(waiting.status, RegistrationStatus.WAITLISTED);
  assert.equal(waiting.waitlistPosition, 1);

  const page = await events.getEvent({ eventId }, bearer(first));
  assert.equal(page.event.id, eventId);
  assert.equal(page.organizer?.displayName, organizerName, "the page names the organizer");
  assert.equal(page.myRegistration?.id, a.id);
  assert.equal(page.counts?.confirmed, 1);

  const tickets = (await registrations.listMyTickets({}, bearer(first))).tickets;
  const ticket = tickets.find((t) => t.registration.eventId === eventId);
  assert.ok(ticket, "my tickets lists the event");
  assert.ok(ticket.registration.ticketCode.length > 0, "a confirmed ticket carries its code");
  assert.ok(ticket.eventTitle.length > 0 && ticket.eventStartsAt, "a ticket shows its event");
  console.log("the event page names the organizer; my tickets holds the ticket");

  await registrations.leaveEvent({ eventId }, bearer(first));
  const promoted = (await registrations.getMyRegistration({ eventId }, bearer(second))).registration;
  assert.equal(promoted.status, RegistrationStatus.CONFIRMED, "a leave promotes the waitlist");
  await watch.close();
  console.log("a leave promoted the waitlisted person");

  const forged = await failure(events.getEvent({ eventId }, bearer("not.a.token")));
  assert.equal(forged.code, Code.Unauthenticated, "a bad token is never read as anonymous");
  const unknown = await failure(events.getEvent({ eventId: randomUUID() }));
  assert.equal(unknown.code, Code.NotFound);
  assert.equal(unknown.metadata.get("x-cityevents-error"), "EVENT_NOT_FOUND");
  const malformed = await failure(registrations.joinEvent({ eventId: "nope" }, bearer(second)));
  assert.equal(malformed.code, Code.InvalidArgument);
  assert.match(malformed.rawMessage, /event_id/, "the error names the field");
  console.log("errors arrive as codes with their reasons");

  // Discovery: near me (5 km around the Louvre, nearest first) and a typo.
  const near = { latitude: 48.8606, longitude: 2.3376, radiusKm: 5 };
  const nearby = await discovery.searchEvents({ search: { near, sort: Sort.DISTANCE } });
  const card = nearby.events.find((c) => c.eventId === eventId);
  assert.ok(card, "the event is near the Louvre");
  assert.ok(card.distanceKm > 3.1 && card.distanceKm < 3.4, `about 3.3 km: ${card.distanceKm}`);
  const typo = await discovery.searchEvents({ search: { query: "web nigt" } });
  assert.ok(typo.events.some((c) => c.eventId === eventId), "a typo'd search finds it");
  const badGeo = await failure(discovery.searchEvents({ search: { near: { ...near, radiusKm: 0 } } }));
  assert.equal(badGeo.code, Code.InvalidArgument);
  console.log("found near the Louvre and by a typo over gRPC-web");
  console.log("grpc-web journey passed");
}

main().catch((e) => {
  console.error("FAIL", e);
  process.exit(1);
});
