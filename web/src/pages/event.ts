// The event page: details, cover, seats kept live over the server stream
// (LiveService.WatchEvent), and joining or leaving.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { apiBase, events, live, registrations } from "../client";
import { h, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { imageUrl, seats, when } from "../format";
import type { GetCountsResponse, Registration } from "../gen/cityevents/join/v1/join_pb";
import { RegistrationStatus } from "../gen/cityevents/join/v1/join_pb";
import { session } from "../session";
import { ticket } from "../ticket";

/** Renders the page; returns what stops its live stream when the page goes. */
export async function eventPage(main: HTMLElement, eventId: string): Promise<() => void> {
  const stop = new AbortController();
  show(main, status("Loading the event…"));
  let page;
  try {
    page = await events.getEvent({ eventId });
  } catch (err) {
    show(main, h("h1", {}, "Event"), problemNotice(describe(err)));
    return () => stop.abort();
  }
  const event = page.event;
  const draft = event?.draft;
  if (!event || !draft) {
    show(main, h("h1", {}, "Event"), status("We could not find that event."));
    return () => stop.abort();
  }
  const capacity = draft.capacity;
  const seatLine = h("p", { class: "seats", id: "seats", role: "status" });
  const showCounts = (c?: GetCountsResponse) => {
    seatLine.textContent = c ? seats(capacity, c.confirmed, c.waitlisted) : "";
  };
  showCounts(page.counts);

  const action = h("div", { id: "registration" });
  const feedback = h("div", { "aria-live": "assertive" });
  const showRegistration = (r?: Registration) => {
    feedback.replaceChildren();
    if (!session.get()) {
      show(action, h("a", { href: `#/signin?next=${encodeURIComponent(`#/events/${eventId}`)}` }, "Sign in to join"));
      return;
    }
    mine = r;
    const going = r && (r.status === RegistrationStatus.CONFIRMED || r.status === RegistrationStatus.CHECKED_IN);
    const waiting = r && r.status === RegistrationStatus.WAITLISTED;
    const text = going ? "You are going." : waiting ? `You are number ${r.waitlistPosition} on the waitlist.` : "";
    const button = going || waiting
      ? h("button", { class: "secondary", type: "button", onclick: () => void act(() => leave()) }, going ? "Leave" : "Leave the waitlist")
      : h("button", { type: "button", onclick: () => void act(() => join()) }, "Join");
    show(action, text ? h("p", {}, text) : null, going && r.ticketCode ? ticket(r.ticketCode) : null, button);
  };
  let mine: Registration | undefined;
  // A promotion from the waitlist shows as the counts move.
  const refreshMine = async () => {
    if (!session.get()) return;
    try {
      const r = (await registrations.getMyRegistration({ eventId })).registration;
      if (r?.status !== mine?.status || r?.waitlistPosition !== mine?.waitlistPosition) showRegistration(r);
    } catch {
      // Not registered (NOT_FOUND) or a blip: the page stays as it is.
    }
  };
  const act = async (f: () => Promise<Registration | undefined>) => {
    try {
      showRegistration(await f());
    } catch (err) {
      feedback.replaceChildren(problemNotice(describe(err)));
    }
  };
  const join = async () => (await registrations.joinEvent({ eventId })).registration;
  const leave = async () => {
    await registrations.leaveEvent({ eventId });
    return undefined;
  };
  showRegistration(page.myRegistration);

  const cover = event.coverImages[0]?.coverUrl;
  const where = draft.location.case === "venue"
    ? `${draft.location.value.name}, ${draft.location.value.city}`
    : "Online";
  show(main,
    cover ? h("img", { class: "cover", src: imageUrl(cover, apiBase), alt: "" }) : null,
    h("h1", {}, draft.title),
    h("p", { class: "muted" }, `${draft.startsAt ? when(timestampDate(draft.startsAt), draft.timeZone) : ""} · ${where}`),
    page.organizer ? h("p", {}, `Organised by ${page.organizer.displayName}`) : null,
    seatLine, action, feedback,
    h("p", {}, draft.description),
    session.get()?.userId === event.organizerId ? checkInForm(eventId) : null);

  void watch(eventId, stop.signal, (c) => {
    showCounts(c);
    void refreshMine();
  });
  return () => stop.abort();
}

/** The organizer's door: check a ticket in by its code. */
function checkInForm(eventId: string): HTMLElement {
  const code = h("input", { id: "checkin-code", name: "code", autocomplete: "off", required: true });
  const result = h("div", { "aria-live": "assertive" });
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await registrations.checkIn({ eventId, ticketCode: code.value.trim() });
      result.replaceChildren(h("p", { class: "notice", role: "status" },
        r.firstCheckIn ? "Checked in. Welcome!" : "This ticket was already checked in."));
      code.value = "";
    } catch (err) {
      result.replaceChildren(problemNotice(describe(err)));
    }
  };
  return h("section", { "aria-labelledby": "checkin-title" },
    h("h2", { id: "checkin-title" }, "Check-in"),
    h("form", { onsubmit: (e: Event) => void submit(e) },
      h("label", { for: "checkin-code" }, "Ticket code"), code, h("button", { type: "submit" }, "Check in")),
    result);
}

/** Follows the event's counts until `signal`; reconnects after a drop. */
async function watch(eventId: string, signal: AbortSignal, onCounts: (c: GetCountsResponse) => void) {
  while (!signal.aborted) {
    try {
      for await (const update of live.watchEvent({ eventId }, { signal })) {
        if (update.update.case === "counts") onCounts(update.update.value);
      }
    } catch {
      // Dropped (a deploy, a network change): the page keeps its last
      // counts and follows again shortly.
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
