// The organizer's view of an event: the door (check-in by code, by the
// camera, and offline from a downloaded list), the attendees with their
// answers, and the waitlist.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { events, registrations } from "../client";
import { h, more, problemNotice, reasonForm, show, status } from "../dom";
import { admit, type DoorList, doorStore, judge, syncWords, type Verdict } from "../door";
import { describe } from "../errors";
import type { EventDraft } from "../gen/cityevents/event/v1/event_pb";
import type { PublicProfile } from "../gen/cityevents/auth/v1/auth_pb";
import { type Registration, RegistrationStatus } from "../gen/cityevents/join/v1/join_pb";
import { REGISTRATION_WORDS } from "../format";
import { answerText } from "../questions";
import { startScanner } from "../scan";

/** Renders the page; returns what stops the camera and the sync listener. */
export async function managePage(main: HTMLElement, eventId: string): Promise<() => void> {
  const stop = new AbortController();
  show(main, status("Loading the event…"));
  let draft: EventDraft | undefined;
  try {
    draft = (await events.getEvent({ eventId })).event?.draft;
  } catch (err) {
    // Opened without a network: the door still works from its list.
    const list = doorStore.load(eventId);
    if (describe(err).reason === "NETWORK" && list) {
      show(main, h("h1", {}, `Check-in · ${list.title}`),
        status("Offline: checking tickets against the downloaded list. The attendee lists come back with the network."),
        door(eventId, list.title, stop.signal, () => undefined));
    } else {
      show(main, h("h1", {}, "Attendees and check-in"), problemNotice(describe(err)));
    }
    return () => stop.abort();
  }
  if (!draft) return () => stop.abort();
  const d = draft;
  const attendees = h("section", { "aria-labelledby": "attendees-title", "data-state": "loading", id: "attendees" });
  const waitlist = h("section", { "aria-labelledby": "waitlist-title", "data-state": "loading", id: "waitlist" });
  const reload = () => {
    void list(attendees, "attendees-title", "Attendees", d, (pageToken) => registrations.listAttendees({ eventId, pageSize: 50, pageToken }),
      (r, name) => remover(eventId, r, name, reload));
    void list(waitlist, "waitlist-title", "Waitlist", d, (pageToken) => registrations.listWaitlist({ eventId, pageSize: 50, pageToken }));
  };
  show(main,
    h("p", {}, h("a", { href: `#/events/${eventId}` }, `← ${d.title}`)),
    h("h1", {}, "Attendees and check-in"),
    door(eventId, d.title, stop.signal, reload),
    attendees, waitlist);
  reload();
  return () => stop.abort();
}

/** One paged list of registrations, with a "More" button. */
async function list(section: HTMLElement, titleId: string, title: string, d: EventDraft,
  fetchPage: (token: string) => Promise<{ registrations: Registration[]; nextPageToken: string; people: PublicProfile[] }>,
  action?: (r: Registration, name?: string) => HTMLElement | null) {
  section.dataset.state = "loading";
  const heading = h("h2", { id: titleId }, title);
  show(section, heading, status(`Loading the ${title.toLowerCase()}…`));
  const rows = h("ul", { class: "people" });
  let count = 0;
  const moreSlot = h("div");
  const load = async (token: string) => {
    const page = await fetchPage(token);
    count += page.registrations.length;
    heading.textContent = `${title} (${count}${page.nextPageToken ? "+" : ""})`;
    const names = new Map(page.people.map((p) => [p.id, p.displayName]));
    rows.append(...page.registrations.map((r) => person(r, names.get(r.userId), d, action)));
    more(moreSlot, page.nextPageToken, load);
  };
  try {
    await load("");
    show(section, heading, count ? rows : status(title === "Waitlist" ? "Nobody is waiting." : "Nobody has joined yet."), moreSlot);
  } catch (err) {
    show(section, heading, problemNotice(describe(err)));
  }
  section.dataset.state = "done";
}

function person(r: Registration, name: string | undefined, d: EventDraft,
  action?: (r: Registration, name?: string) => HTMLElement | null): HTMLElement {
  const tier = d.tiers.find((t) => t.id === r.tierId)?.name;
  const state = r.status === RegistrationStatus.WAITLISTED ? `Waiting, number ${r.waitlistPosition}`
    : REGISTRATION_WORDS[r.status] ?? "";
  return h("li", { class: "card" }, h("div", {},
    h("p", {}, h("strong", {}, name ?? "Name not available"), ` · ticket ${label(r.id)} · ${state}`, tier ? ` · ${tier}` : "",
      r.createdAt ? ` · joined ${timestampDate(r.createdAt).toLocaleDateString()}` : ""),
    r.answers.length ? h("dl", { class: "answers" }, ...r.answers.flatMap((a) => [
      h("dt", {}, d.questions.find((q) => q.id === a.questionId)?.label ?? "A removed question"),
      h("dd", {}, answerText(a)),
    ])) : null,
    action?.(r, name) ?? null));
}

/** Removing someone: with a reason they are told. */
function remover(eventId: string, r: Registration, name: string | undefined, done: () => void): HTMLElement | null {
  if (r.status === RegistrationStatus.CHECKED_IN) return null;
  return reasonForm({
    id: `remove-${r.id}`, summary: `Remove ${name ?? `ticket ${label(r.id)}`}`, label: "Reason", button: "Remove",
    empty: "Please give a reason.",
    act: async (reason) => {
      await registrations.removeAttendee({ eventId, userId: r.userId, reason });
      done();
    },
  });
}

/** The door: a code typed or scanned is checked in online; offline (or
 *  when the call cannot get through) it is judged from the downloaded list
 *  and kept to send later. */
function door(eventId: string, title: string, signal: AbortSignal, changed: () => void): HTMLElement {
  const code = h("input", { id: "checkin-code", name: "code", autocomplete: "off", required: true });
  const result = h("div", { "aria-live": "assertive", id: "checkin-result" });
  const offline = h("div", { id: "offline", "aria-live": "polite" });
  const camera = h("div", { class: "camera" });
  // Check-ins and syncs run one at a time, in order; one that fails never
  // stops the next.
  let busy = Promise.resolve();
  const queue = (step: () => Promise<void>) => {
    busy = busy.then(step).catch(() => say("The door could not check that ticket. Try again.", false));
    return busy;
  };

  const say = (text: string, ok = true) => result.replaceChildren(ok
    ? h("p", { class: "notice", role: "status" }, text)
    : problemNotice({ reason: "DOOR", message: text }));

  const offlineCheck = async (ticket: string, list: DoorList) => {
    // WebCrypto exists on https (and localhost) only.
    if (!globalThis.crypto?.subtle) return say("Offline check-in needs the app served over https.", false);
    const v: Verdict = await judge(list, ticket);
    if (v.kind === "welcome") doorStore.save(admit(list, ticket, v.registrationId));
    const text = v.kind === "welcome" ? `${welcome(v.label)} (Offline: sent when the network is back.)`
      : v.kind === "already" ? used(v.label) : VERDICT[v.kind];
    say(text, v.kind === "welcome" || v.kind === "already");
    renderOffline();
  };

  const checkIn = (ticket: string) => {
    return queue(async () => {
      const list = doorStore.load(eventId);
      if (list && !navigator.onLine) return offlineCheck(ticket, list);
      try {
        const r = await registrations.checkIn({ eventId, ticketCode: ticket });
        // The downloaded list names the person, and learns of the check-in
        // for a later offline scan.
        const id = r.registration?.id ?? "";
        const name = list?.attendees[id]?.label;
        say(r.firstCheckIn ? welcome(name) : used(name));
        if (list?.attendees[id]) doorStore.save({ ...list, attendees: { ...list.attendees, [id]: { ...list.attendees[id], checkedIn: true } } });
        changed();
      } catch (err) {
        const p = describe(err);
        if (list && (p.reason === "NETWORK" || p.reason === "UNAVAILABLE")) return offlineCheck(ticket, list);
        result.replaceChildren(problemNotice(p));
      }
    });
  };

  const download = async () => {
    offline.replaceChildren(status("Downloading the attendee list…"));
    try {
      const { key } = await registrations.getTicketKey({});
      if (!key) throw new Error("no key");
      const attendees: DoorList["attendees"] = {};
      let pageToken = "";
      do {
        const page = await registrations.listAttendees({ eventId, pageSize: 100, pageToken });
        const names = new Map(page.people.map((p) => [p.id, p.displayName]));
        for (const r of page.registrations) {
          attendees[r.id] = { checkedIn: r.status === RegistrationStatus.CHECKED_IN, label: names.get(r.userId) ?? `ticket ${label(r.id)}` };
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
      const before = doorStore.load(eventId);
      doorStore.save({ eventId, title, key: { kty: key.kty, crv: key.crv, x: key.x }, attendees,
        downloadedAt: new Date().toISOString(), pending: before?.pending ?? [] });
      renderOffline();
    } catch (err) {
      offline.replaceChildren(problemNotice(describe(err)));
    }
  };

  // Sends the check-ins made offline, in the same queue as new ones, so
  // nothing is added to the list while it is being sent.
  const sync = () => {
    return queue(async () => {
      const list = doorStore.load(eventId);
      if (!list?.pending.length || !navigator.onLine) return;
      let sent = 0;
      let elsewhere = 0;
      const left: DoorList["pending"] = [];
      for (const p of list.pending) {
        try {
          const r = await registrations.checkIn({ eventId, ticketCode: p.code });
          sent++;
          if (!r.firstCheckIn) elsewhere++;
        } catch (err) {
          // Not through (offline, signed out, busy): kept for the next
          // sync. Refused (the ticket was cancelled meanwhile): reported.
          const why = describe(err);
          if (TRANSIENT.has(why.reason)) left.push(p);
          else say(`Ticket ${label(p.registrationId)} was refused when sent: ${why.message}`, false);
        }
      }
      const attendees = { ...list.attendees };
      for (const p of list.pending) if (!left.includes(p) && attendees[p.registrationId]) attendees[p.registrationId].checkedIn = true;
      doorStore.save({ ...list, attendees, pending: left });
      if (sent) {
        say(syncWords(sent, elsewhere));
        changed();
      }
      renderOffline();
    });
  };

  const renderOffline = () => {
    const list = doorStore.load(eventId);
    show(offline,
      list ? h("p", {}, `Ready offline: ${plural(Object.keys(list.attendees).length, "attendee")}, downloaded ${new Date(list.downloadedAt).toLocaleTimeString()}.`,
        list.pending.length ? ` ${plural(list.pending.length, "check-in")} waiting to be sent.` : "")
        : h("p", { class: "muted" }, "Download the list to keep checking people in if the network drops."),
      h("button", { type: "button", class: "secondary", onclick: () => void download() },
        list ? "Download the list again" : "Download for offline check-in"),
      list?.pending.length ? h("button", { type: "button", class: "secondary", onclick: sync }, "Send now") : null);
  };
  window.addEventListener("online", sync);
  signal.addEventListener("abort", () => window.removeEventListener("online", sync), { once: true });
  renderOffline();
  sync();

  let scanning: AbortController | undefined;
  const cameraButton = h("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Scan with the camera");
  cameraButton.addEventListener("click", async () => {
    if (scanning) {
      scanning.abort();
      scanning = undefined;
      camera.replaceChildren();
      cameraButton.textContent = "Scan with the camera";
      cameraButton.setAttribute("aria-pressed", "false");
      return;
    }
    scanning = new AbortController();
    signal.addEventListener("abort", () => scanning?.abort(), { once: true });
    try {
      const s = await startScanner((c) => void checkIn(c), scanning.signal);
      s.video.setAttribute("aria-label", "Camera: hold the ticket's QR code in view");
      camera.replaceChildren(s.video);
      cameraButton.textContent = "Stop the camera";
      cameraButton.setAttribute("aria-pressed", "true");
    } catch {
      scanning = undefined;
      say("We cannot use the camera: allow it in the browser, or type the code.", false);
    }
  });

  return h("section", { "aria-labelledby": "checkin-title" },
    h("h2", { id: "checkin-title" }, "Check-in"),
    h("form", { onsubmit: (e: Event) => {
      e.preventDefault();
      const c = code.value.trim();
      if (!c) return;
      code.value = "";
      void checkIn(c);
    } }, h("label", { for: "checkin-code" }, "Ticket code"), code, h("button", { type: "submit" }, "Check in")),
    cameraButton, camera, result, offline);
}

const TRANSIENT = new Set(["NETWORK", "UNAVAILABLE", "UNAUTHENTICATED", "DEADLINE_EXCEEDED", "INTERNAL",
  "OVERLOADED", "RESOURCE_EXHAUSTED"]);

function welcome(name?: string): string {
  return name ? `Checked in. Welcome, ${name}!` : "Checked in. Welcome!";
}

function used(name?: string): string {
  return name ? `This ticket (${name}) was already checked in.` : "This ticket was already checked in.";
}

const VERDICT: Record<Exclude<Verdict["kind"], "welcome" | "already">, string> = {
  "not-on-list": "This ticket is genuine but not on the downloaded list. Download the list again when online.",
  "other-event": "This ticket is for another event.",
  forged: "This is not a valid ticket.",
};

/** A short, readable handle for a registration: its last 6 characters. */
function label(id: string): string {
  return id.slice(-6).toUpperCase();
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
