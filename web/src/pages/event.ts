// The event page: details, cover, seats kept live over the server stream
// (LiveService.WatchEvent), joining (a ticket type, the organizer's
// questions) or leaving, and "add to calendar".
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { type CalendarEvent, fileName, ics } from "../calendar";
import { apiBase, events, live, registrations } from "../client";
import { h, holdFor, problemNotice, reasonForm, show, status } from "../dom";
import { describe } from "../errors";
import { imageUrl, seats, when } from "../format";
import { type Event as ApiEvent, type EventDraft, EventStatus, QuestionKind } from "../gen/cityevents/event/v1/event_pb";
import type { GetCountsResponse, Registration } from "../gen/cityevents/join/v1/join_pb";
import { RegistrationStatus } from "../gen/cityevents/join/v1/join_pb";
import { type AnswerInit, answers, price, type Values } from "../questions";
import { session } from "../session";
import { ticket } from "../ticket";

const STATUS_WORDS: Partial<Record<EventStatus, string>> = {
  [EventStatus.DRAFT]: "A draft: only organizers see it until it is published.",
  [EventStatus.CANCELLED]: "This event has been cancelled.",
  [EventStatus.COMPLETED]: "This event is over.",
};

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
    joinForm.updateCounts(c);
  };

  const action = h("div", { id: "registration" });
  const feedback = h("div", { "aria-live": "assertive" });
  const joinForm = registrationForm(draft, page.counts, (tierId, answers) => act(async () =>
    (await registrations.joinEvent({ eventId, tierId, answers })).registration));
  showCounts(page.counts);
  const showRegistration = (r?: Registration) => {
    feedback.replaceChildren();
    if (!session.get()) {
      show(action, h("a", { href: `#/signin?next=${encodeURIComponent(`#/events/${eventId}`)}` }, "Sign in to join"));
      return;
    }
    mine = r;
    const going = r && (r.status === RegistrationStatus.CONFIRMED || r.status === RegistrationStatus.CHECKED_IN);
    const waiting = r && r.status === RegistrationStatus.WAITLISTED;
    if (!going && !waiting) {
      // Only a published event takes joiners.
      show(action, event.status === EventStatus.PUBLISHED ? joinForm.form : null);
      return;
    }
    const tier = draft.tiers.find((t) => t.id === r.tierId);
    const text = going ? "You are going." : `You are number ${r.waitlistPosition} on the waitlist.`;
    show(action, h("p", {}, text, tier ? ` (${tier.name})` : ""), going && r.ticketCode ? ticket(r.ticketCode) : null,
      h("button", { class: "secondary", type: "button", onclick: () => void act(() => leave()) },
        going ? "Leave" : "Leave the waitlist"));
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
      const p = describe(err);
      // "answers: \"Diet\" is required" names the question: shown at it.
      if (p.field === "answers" && joinForm.showAt(p.message)) return;
      feedback.replaceChildren(problemNotice(p));
      // Overloaded or rate limited: the button waits as long as asked.
      const button = action.querySelector("button");
      if (p.retryAfterSecs && button) holdFor(button, p.retryAfterSecs);
    }
  };
  const leave = async () => {
    await registrations.leaveEvent({ eventId });
    return undefined;
  };
  showRegistration(page.myRegistration);

  const cover = event.coverImages[0]?.coverUrl;
  const where = draft.location.case === "venue"
    ? [draft.location.value.name, draft.location.value.address, draft.location.value.city].filter(Boolean).join(", ")
    : "Online";
  const me = session.get()?.userId;
  const organizes = !!me && (me === event.organizerId || event.coOrganizerIds.includes(me));
  const startsAt = draft.startsAt ? timestampDate(draft.startsAt) : undefined;
  const statusLine = h("div", { id: "event-status" },
    event.status !== EventStatus.PUBLISHED ? h("p", { class: "notice" }, STATUS_WORDS[event.status] ?? "") : null);
  show(main,
    cover ? h("img", { class: "cover", src: imageUrl(cover, apiBase), alt: "" }) : null,
    h("h1", {}, draft.title),
    statusLine,
    h("p", { class: "muted" }, `${startsAt ? when(startsAt, draft.timeZone) : ""} · ${where}`),
    // http(s) only, whatever the API let through: never a script link.
    draft.location.case === "onlineUrl" && /^https?:\/\//i.test(draft.location.value)
      && page.myRegistration?.status === RegistrationStatus.CONFIRMED
      ? h("p", {}, h("a", { href: draft.location.value, rel: "noopener" }, "Join online")) : null,
    page.organizer ? h("p", {}, `Organised by ${page.organizer.displayName}`) : null,
    seatLine, action, feedback,
    h("p", { class: "description" }, draft.description),
    startsAt ? calendarLink({
      id: event.id, title: draft.title, description: draft.description, startsAt,
      endsAt: draft.endsAt ? timestampDate(draft.endsAt) : undefined, location: where,
      url: location.href,
    }) : null,
    organizes ? h("nav", { class: "organizer-links", "aria-label": "Organizer" },
      h("a", { href: `#/events/${eventId}/edit` }, "Edit event"),
      h("a", { href: `#/events/${eventId}/manage` }, "Attendees and check-in")) : null,
    !organizes && session.get() ? reportForm(eventId) : null);

  void watch(eventId, stop.signal, (c) => {
    showCounts(c);
    void refreshMine();
  }, (e) => {
    // Cancelled (or changed) while the page is open: said at once.
    if (e.status !== event.status && e.status === EventStatus.CANCELLED) {
      statusLine.replaceChildren(h("p", { class: "notice", role: "status" }, STATUS_WORDS[EventStatus.CANCELLED] ?? ""));
      event.status = e.status;
      showRegistration(mine);
    }
  });
  return () => stop.abort();
}

/** Follows the event and its counts until `signal`; reconnects after a drop. */
async function watch(eventId: string, signal: AbortSignal, onCounts: (c: GetCountsResponse) => void,
  onEvent: (e: ApiEvent) => void) {
  while (!signal.aborted) {
    try {
      for await (const update of live.watchEvent({ eventId }, { signal })) {
        if (update.update.case === "counts") onCounts(update.update.value);
        if (update.update.case === "event") onEvent(update.update.value);
      }
    } catch {
      // Dropped (a deploy, a network change): the page keeps its last
      // counts and follows again shortly.
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** The join form: a ticket type when the event has several, the
 *  organizer's questions, and the button. `showAt` puts an API complaint
 *  about an answer next to its question (true when it found one). */
function registrationForm(draft: EventDraft, counts: GetCountsResponse | undefined,
  join: (tierId: string, answers: AnswerInit[]) => Promise<void>) {
  const errors = new Map<string, HTMLElement>();
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const tierInputs = draft.tiers.map((t, i) => {
    const input = h("input", { type: "radio", name: "tier", id: `tier-${i}`, value: t.id, ...(i === 0 ? { checked: true } : {}) });
    const left = h("span");
    return { tier: t, input, left, el: h("div", { class: "field check" }, input, h("label", { for: `tier-${i}` },
      `${t.name} · ${price(t.priceCents, t.currency)}`, left)) };
  });
  /** What each ticket type has left, kept live with the page's counts. */
  const updateCounts = (c?: GetCountsResponse) => {
    for (const t of tierInputs) {
      const left = c?.tiers.find((x) => x.tierId === t.tier.id)?.remaining;
      t.left.textContent = left === undefined || left < 0 ? "" : left === 0 ? " · full (waitlist)" : ` · ${left} left`;
    }
  };
  updateCounts(counts);
  const questionFields = draft.questions.map((q, i) => {
    const id = `answer-${i}`;
    const error = h("p", { id: `${id}-error`, class: "field-error" });
    errors.set(q.id, error);
    const common = { id, name: id, "aria-describedby": `${id}-error`, ...(q.required ? { required: true } : {}) };
    const label = `${q.label}${q.required ? "" : " (optional)"}`;
    let input: HTMLInputElement | HTMLSelectElement;
    if (q.kind === QuestionKind.CHECKBOX) {
      input = h("input", { ...common, type: "checkbox" });
      inputs.set(q.id, input);
      return h("div", { class: "field check" }, input, h("label", { for: id }, label), error);
    }
    input = q.kind === QuestionKind.CHOICE
      ? h("select", common, h("option", { value: "" }, "Choose…"), ...q.choices.map((c) => h("option", { value: c }, c)))
      : h("input", { ...common, type: "text", ...(q.kind === QuestionKind.NUMBER ? { inputmode: "decimal" } : {}) });
    inputs.set(q.id, input);
    return h("div", { class: "field" }, h("label", { for: id }, label), input, error);
  });
  const button = h("button", { type: "submit" }, "Join");
  const showAt = (message: string): boolean => {
    errors.forEach((e) => e.replaceChildren());
    const q = draft.questions.find((q) => message.includes(`"${q.label}"`));
    if (!q) return false;
    (errors.get(q.id) as HTMLElement).textContent = message;
    inputs.get(q.id)?.focus();
    return true;
  };
  const form = h("form", { class: "join", novalidate: true, onsubmit: (e: Event) => {
    e.preventDefault();
    errors.forEach((el) => el.replaceChildren());
    const values: Values = {};
    inputs.forEach((input, id) => {
      values[id] = input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value;
    });
    const checked = answers(draft.questions, values);
    if (!checked.ok) {
      (errors.get(checked.questionId) as HTMLElement).textContent = checked.message;
      inputs.get(checked.questionId)?.focus();
      return;
    }
    const tierId = tierInputs.find((t) => t.input.checked)?.input.value ?? "";
    button.disabled = true;
    void join(tierId, checked.answers).finally(() => {
      // Unless a retry-after holds it (`holdFor`).
      if (button.dataset.label === undefined) button.disabled = false;
    });
  } },
  tierInputs.length > 1 ? h("fieldset", {}, h("legend", {}, "Ticket"), ...tierInputs.map((t) => t.el))
    : tierInputs.length === 1 ? h("p", {}, `${draft.tiers[0].name} · ${price(draft.tiers[0].priceCents, draft.tiers[0].currency)}`) : null,
  ...questionFields, button);
  return { form, showAt, updateCounts };
}

/** "Add to calendar": the event as an .ics file to download. */
function calendarLink(e: CalendarEvent): HTMLElement {
  return h("p", {}, h("a", {
    href: `data:text/calendar;charset=utf-8,${encodeURIComponent(ics(e))}`, download: fileName(e.title),
  }, "Add to calendar"), " (an .ics file for any calendar app)");
}

/** Anyone signed in may flag an event for the moderators. */
function reportForm(eventId: string): HTMLElement {
  return reasonForm({
    id: "report-reason", summary: "Report this event", label: "What is wrong with it?", button: "Report",
    empty: "Please say what is wrong.",
    act: async (reason) => {
      await events.reportEvent({ eventId, reason });
      return "Thank you. The moderators will look at it.";
    },
  });
}
