// The signed-in person's own things: the events they organize (drafts
// included, which nobody else can find) and which mails they get.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { account, events } from "../client";
import { h, more, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { when } from "../format";
import { type Event as ApiEvent, EventStatus } from "../gen/cityevents/event/v1/event_pb";

const STATUS: Record<EventStatus, string> = {
  [EventStatus.UNSPECIFIED]: "",
  [EventStatus.DRAFT]: "Draft",
  [EventStatus.PUBLISHED]: "Published",
  [EventStatus.CANCELLED]: "Cancelled",
  [EventStatus.COMPLETED]: "Over",
};

export async function myEventsPage(main: HTMLElement): Promise<void> {
  const list = h("ul", { class: "people", id: "my-events" });
  const moreSlot = h("div");
  show(main, h("h1", {}, "My events"), h("p", {}, h("a", { href: "#/new" }, "Create an event")), status("Loading your events…"));
  const load = async (pageToken: string): Promise<number> => {
    const page = await events.listMyEvents({ pageSize: 50, pageToken });
    list.append(...page.events.map(row));
    more(moreSlot, page.nextPageToken, load);
    return page.events.length;
  };
  try {
    const n = await load("");
    show(main, h("h1", {}, "My events"), h("p", {}, h("a", { href: "#/new" }, "Create an event")),
      n ? list : status("You organize no events yet."), moreSlot);
  } catch (err) {
    show(main, h("h1", {}, "My events"), problemNotice(describe(err)));
  }
}

function row(e: ApiEvent): HTMLElement {
  const d = e.draft;
  return h("li", { class: "card" }, h("div", {},
    h("h2", {}, h("a", { href: `#/events/${e.id}` }, d?.title ?? "")),
    h("p", { class: "muted" }, `${STATUS[e.status]}${e.hidden ? " · hidden by moderators" : ""}`,
      d?.startsAt ? ` · ${when(timestampDate(d.startsAt), d.timeZone)}` : ""),
    h("p", {}, h("a", { href: `#/events/${e.id}/edit` }, "Edit"), " · ",
      h("a", { href: `#/events/${e.id}/manage` }, "Attendees and check-in"))));
}

/** Which mails to get; security mails (sign-in links, resets) always come. */
export async function settingsPage(main: HTMLElement): Promise<void> {
  show(main, h("h1", {}, "Mail settings"), status("Loading your settings…"));
  let prefs;
  try {
    prefs = (await account.getNotificationPreferences({})).preferences;
  } catch (err) {
    show(main, h("h1", {}, "Mail settings"), problemNotice(describe(err)));
    return;
  }
  const box = (id: string, label: string, on: boolean) => {
    const input = h("input", { id, type: "checkbox", ...(on ? { checked: true } : {}) });
    return { input, el: h("div", { class: "field check" }, input, h("label", { for: id }, label)) };
  };
  const confirmations = box("pref-confirmations", "Confirmations when I join or move up from a waitlist (with the calendar invitation)", !!prefs?.confirmations);
  const changes = box("pref-changes", "When an event I joined changes its time or place, or is cancelled", !!prefs?.eventChanges);
  const reminders = box("pref-reminders", "A reminder the day before", !!prefs?.reminders);
  const result = h("div", { "aria-live": "polite" });
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await account.updateNotificationPreferences({ preferences: {
        confirmations: confirmations.input.checked, eventChanges: changes.input.checked, reminders: reminders.input.checked,
      } });
      result.replaceChildren(h("p", { class: "notice", role: "status" }, "Saved."));
    } catch (err) {
      result.replaceChildren(problemNotice(describe(err)));
    }
  };
  show(main, h("h1", {}, "Mail settings"),
    h("form", { onsubmit: (e: Event) => void save(e) },
      h("fieldset", {}, h("legend", {}, "Mail me"), confirmations.el, changes.el, reminders.el),
      h("p", { class: "muted" }, "Mails about your account (confirming your email, a new password) always come."),
      h("button", { type: "submit" }, "Save"), result));
}
