// My tickets: every registration of the signed-in person, the confirmed
// ones with their ticket as a QR code for the door.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { registrations } from "../client";
import { h, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { RegistrationStatus } from "../gen/cityevents/join/v1/join_pb";
import { ticket } from "../ticket";

const STATUS: Partial<Record<RegistrationStatus, string>> = {
  [RegistrationStatus.CONFIRMED]: "Going",
  [RegistrationStatus.WAITLISTED]: "On the waitlist",
  [RegistrationStatus.CHECKED_IN]: "Checked in",
  [RegistrationStatus.CANCELLED]: "Cancelled",
};

export async function ticketsPage(main: HTMLElement): Promise<void> {
  show(main, h("h1", {}, "My tickets"), status("Loading your tickets…"));
  try {
    const { tickets } = await registrations.listMyTickets({ pageSize: 50 });
    if (tickets.length === 0) {
      show(main, h("h1", {}, "My tickets"), status("No tickets yet."), h("p", {}, h("a", { href: "#/" }, "Discover events")));
      return;
    }
    show(main, h("h1", {}, "My tickets"), h("ul", { class: "tickets" }, ...tickets.map((t) => {
      const r = t.registration;
      const starts = t.eventStartsAt ? timestampDate(t.eventStartsAt).toLocaleString() : "";
      const going = r?.status === RegistrationStatus.CONFIRMED;
      return h("li", { class: "card" }, h("div", {},
        h("h2", {}, h("a", { href: `#/events/${r?.eventId ?? ""}` }, t.eventTitle)),
        h("p", { class: "muted" }, `${starts} · ${STATUS[r?.status ?? RegistrationStatus.UNSPECIFIED] ?? ""}`),
        r?.status === RegistrationStatus.WAITLISTED ? h("p", {}, `Number ${r.waitlistPosition} on the waitlist`) : null,
        going && r?.ticketCode ? ticket(r.ticketCode) : null));
    })));
  } catch (err) {
    show(main, h("h1", {}, "My tickets"), problemNotice(describe(err)));
  }
}
