// My tickets: every registration of the signed-in person, the confirmed
// ones with their ticket as a QR code for the door.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { apiBase, discovery, registrations } from "../client";
import { h, more, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { type MyRegistration, RegistrationStatus } from "../gen/cityevents/join/v1/join_pb";
import { REGISTRATION_WORDS } from "../format";
import { ticket } from "../ticket";

export async function ticketsPage(main: HTMLElement): Promise<void> {
  show(main, h("h1", {}, "My tickets"), status("Loading your tickets…"));
  const list = h("ul", { class: "tickets" });
  const moreSlot = h("div");
  const load = async (pageToken: string): Promise<number> => {
    const page = await registrations.listMyTickets({ pageSize: 50, pageToken });
    list.append(...page.tickets.map(row));
    more(moreSlot, page.nextPageToken, load);
    return page.tickets.length;
  };
  try {
    if (!(await load(""))) {
      show(main, h("h1", {}, "My tickets"), status("No tickets yet."), h("p", {}, h("a", { href: "#/" }, "Discover events")));
      return;
    }
    show(main, h("h1", {}, "My tickets"), calendarFeed(), list, moreSlot);
  } catch (err) {
    show(main, h("h1", {}, "My tickets"), problemNotice(describe(err)));
  }
}

function row(t: MyRegistration): HTMLElement {
  const r = t.registration;
  const starts = t.eventStartsAt ? timestampDate(t.eventStartsAt).toLocaleString() : "";
  const going = r?.status === RegistrationStatus.CONFIRMED;
  return h("li", { class: "card" }, h("div", {},
    h("h2", {}, h("a", { href: `#/events/${r?.eventId ?? ""}` }, t.eventTitle)),
    h("p", { class: "muted" }, `${starts} · ${REGISTRATION_WORDS[r?.status ?? RegistrationStatus.UNSPECIFIED] ?? ""}`),
    r?.status === RegistrationStatus.WAITLISTED ? h("p", {}, `Number ${r.waitlistPosition} on the waitlist`) : null,
    going && r?.ticketCode ? ticket(r.ticketCode) : null));
}

/** Every joined event in the person's calendar app: a secret feed link
 *  (RotateCalendarLink); making a new one retires the old. */
function calendarFeed(): HTMLElement {
  const slot = h("div", { "aria-live": "polite" });
  const make = async () => {
    try {
      const { path } = await discovery.rotateCalendarLink({});
      const url = apiBase.replace(/\/$/, "") + path;
      show(slot, h("p", {}, "Add this link to your calendar app as a subscription (it keeps itself up to date): "),
        h("p", {}, h("a", { href: url.replace(/^https?:/, "webcal:") }, "Open in your calendar app"), " · ",
          h("code", { class: "feed-url" }, url)),
        h("p", { class: "muted" }, "Anyone with the link sees your events; make a new one to retire it."));
    } catch (err) {
      show(slot, problemNotice(describe(err)));
    }
  };
  return h("section", { "aria-labelledby": "feed-title" }, h("h2", { id: "feed-title" }, "In your calendar"),
    h("button", { type: "button", class: "secondary", onclick: () => void make() }, "Get a calendar link"), slot);
}
