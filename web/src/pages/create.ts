// Create an event (then publish it, or keep it a draft) or edit one: the
// cover uploaded first (REST multipart), ticket types and registration
// questions edited as rows. Editing sends the whole draft with the version
// it was read at, so two organizers never overwrite each other unseen
// (ABORTED: "someone changed this").
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";

import { events } from "../client";
import { h, problemNotice, reasonForm, show, status } from "../dom";
import { describe, type Problem } from "../errors";
import {
  type Event as ApiEvent, EventStatus, type Question, QuestionKind, type TicketTier, Visibility,
} from "../gen/cityevents/event/v1/event_pb";
import { choiceList } from "../questions";
import { session } from "../session";
import { CATEGORIES } from "../search";
import { uploadImage } from "../upload";

type DraftInit = NonNullable<Parameters<typeof events.createEvent>[0]["draft"]>;

export function createPage(main: HTMLElement): void {
  eventForm(main);
}

export async function editPage(main: HTMLElement, eventId: string): Promise<void> {
  show(main, status("Loading the event…"));
  try {
    const { event } = await events.getEvent({ eventId });
    if (!event?.draft) throw new Error("no event");
    const me = session.get()?.userId ?? "";
    if (me !== event.organizerId && !event.coOrganizerIds.includes(me)) {
      show(main, h("h1", {}, "Edit event"), problemNotice({ reason: "PERMISSION_DENIED",
        message: "Only the event's organizers can edit it." }), h("p", {}, h("a", { href: `#/events/${eventId}` }, "Back to the event")));
      return;
    }
    eventForm(main, event);
  } catch (err) {
    show(main, h("h1", {}, "Edit event"), problemNotice(describe(err)));
  }
}

function eventForm(main: HTMLElement, existing?: ApiEvent): void {
  const d = existing?.draft;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const errors = new Map<string, HTMLElement>();
  const errorSlot = (name: string) => {
    const id = `f-${name.replace(/\W/g, "-")}-error`;
    const el = h("p", { id, class: "field-error" });
    errors.set(name, el);
    return el;
  };
  const input = (name: string, label: string, attrs: Record<string, string | boolean> = {}, hint?: string) => {
    const id = `f-${name.replace(/\W/g, "-")}`;
    const el = h("input", { id, name, "aria-describedby": `${id}-error`, ...attrs });
    const error = errorSlot(name);
    return { el, field: h("div", { class: "field" }, h("label", { for: id }, label),
      hint ? h("p", { class: "muted" }, hint) : null, el, error) };
  };
  const venue = d?.location.case === "venue" ? d.location.value : undefined;
  const title = input("draft.title", "Title", { required: true, value: d?.title ?? "" });
  const description = h("textarea", { id: "f-description", name: "description", rows: "4" });
  description.value = d?.description ?? "";
  const category = h("select", { id: "f-category", name: "category" },
    ...CATEGORIES.map((c) => h("option", { value: c, ...(d?.category === c ? { selected: true } : {}) },
      c.charAt(0).toUpperCase() + c.slice(1))));
  const tags = input("draft.tags", "Tags", { value: d?.tags.join(", ") ?? "" }, "Separated by commas, e.g. outdoor, family.");
  const starts = input("draft.starts_at", "Starts",
    { type: "datetime-local", required: true, value: d?.startsAt ? local(timestampDate(d.startsAt)) : "" }, `Times are in ${zone}.`);
  const ends = input("draft.ends_at", "Ends", { type: "datetime-local", required: true, value: d?.endsAt ? local(timestampDate(d.endsAt)) : "" });
  const online = d?.location.case === "onlineUrl";
  const inPerson = h("input", { type: "radio", name: "where", id: "f-in-person", value: "venue", ...(!online ? { checked: true } : {}) });
  const onlineRadio = h("input", { type: "radio", name: "where", id: "f-online", value: "online", ...(online ? { checked: true } : {}) });
  const venueName = input("draft.venue.name", "Venue", { value: venue?.name ?? "" });
  const address = input("draft.venue.address", "Address", { value: venue?.address ?? "", autocomplete: "street-address" });
  const city = input("draft.venue.city", "City", { value: venue?.city ?? "" });
  const latitude = input("draft.venue.latitude", "Latitude", { inputmode: "decimal", value: venue?.latitude ? String(venue.latitude) : "" });
  const longitude = input("draft.venue.longitude", "Longitude", { inputmode: "decimal", value: venue?.longitude ? String(venue.longitude) : "" });
  const onlineUrl = input("draft.online_url", "Link for attendees", { type: "url", value: online ? String(d?.location.value ?? "") : "" },
    "Shown only to people who hold a place.");
  const venueFields = h("div", {}, venueName.field, address.field, city.field, latitude.field, longitude.field);
  const onlineFields = h("div", {}, onlineUrl.field);
  const where = () => {
    venueFields.hidden = onlineRadio.checked;
    onlineFields.hidden = !onlineRadio.checked;
  };
  inPerson.addEventListener("change", where);
  onlineRadio.addEventListener("change", where);
  where();
  const capacity = input("draft.capacity", "Seats (0 for no limit)", { type: "number", min: "0", value: String(d?.capacity ?? 0) },
    "With ticket types, the seats are theirs added up.");
  const waitlistCap = input("draft.waitlist_cap", "Waitlist places (0 for no limit)", { type: "number", min: "0", value: String(d?.waitlistCap ?? 0) });
  const visibility = h("select", { id: "f-visibility", name: "visibility" },
    h("option", { value: String(Visibility.PUBLIC) }, "Public: found by search"),
    h("option", { value: String(Visibility.UNLISTED), ...(d?.visibility === Visibility.UNLISTED ? { selected: true } : {}) },
      "Unlisted: only people with the link"));
  const cover = input("cover", existing?.draft?.coverImageIds.length ? "Replace the cover image" : "Cover image",
    { type: "file", accept: "image/jpeg,image/png,image/webp" });
  // The API names the cover as the draft's image ids.
  errors.set("draft.cover_image_ids", errors.get("cover") as HTMLElement);

  const tiers = rows<TicketTier>("tiers", "Ticket types", "Add a ticket type", errorSlot("draft.tiers"), d?.tiers ?? [], (t, n) => {
    const name = h("input", { id: `tier-name-${n}`, value: t?.name ?? "", "data-id": t?.id ?? "" });
    const seats = h("input", { id: `tier-seats-${n}`, type: "number", min: "0", value: String(t?.capacity ?? 0) });
    const cost = h("input", { id: `tier-price-${n}`, inputmode: "decimal", value: t ? (Number(t.priceCents) / 100).toFixed(2) : "0.00" });
    const currency = h("input", { id: `tier-currency-${n}`, maxlength: "3", size: "4", value: t?.currency || "EUR" });
    return {
      cells: [cell(`tier-name-${n}`, "Name", name), cell(`tier-seats-${n}`, "Seats (0: no limit)", seats),
        cell(`tier-price-${n}`, "Price", cost), cell(`tier-currency-${n}`, "Currency", currency)],
      read: () => ({
        id: name.dataset.id ?? "", name: name.value.trim(), capacity: Number(seats.value) || 0,
        priceCents: BigInt(Math.round((Number(cost.value.replace(",", ".")) || 0) * 100)),
        currency: currency.value.trim().toUpperCase(),
      }),
    };
  });
  const questions = rows<Question>("questions", "Registration questions", "Add a question", errorSlot("draft.questions"), d?.questions ?? [], (q, n) => {
    const label = h("input", { id: `q-label-${n}`, value: q?.label ?? "", "data-id": q?.id ?? "" });
    const kind = h("select", { id: `q-kind-${n}` },
      ...[[QuestionKind.TEXT, "Text"], [QuestionKind.CHOICE, "One of a list"], [QuestionKind.NUMBER, "Number"],
        [QuestionKind.CHECKBOX, "Tick box"]].map(([v, t]) =>
        h("option", { value: String(v), ...(q?.kind === v ? { selected: true } : {}) }, String(t))));
    const required = h("input", { id: `q-required-${n}`, type: "checkbox", ...(q?.required ? { checked: true } : {}) });
    const choices = h("input", { id: `q-choices-${n}`, value: q?.choices.join(", ") ?? "" });
    const choicesCell = cell(`q-choices-${n}`, "Choices (separated by commas)", choices);
    const kindChanged = () => {
      choicesCell.hidden = Number(kind.value) !== QuestionKind.CHOICE;
    };
    kind.addEventListener("change", kindChanged);
    kindChanged();
    return {
      cells: [cell(`q-label-${n}`, "Question", label), cell(`q-kind-${n}`, "Answer", kind),
        h("div", { class: "field check" }, required, h("label", { for: `q-required-${n}` }, "Required")), choicesCell],
      read: () => ({
        id: label.dataset.id ?? "", label: label.value.trim(), kind: Number(kind.value) as QuestionKind,
        required: required.checked, choices: Number(kind.value) === QuestionKind.CHOICE ? choiceList(choices.value) : [],
      }),
    };
  });

  const problems = h("div", { "aria-live": "assertive" });
  const draftOnly = h("input", { id: "f-draft-only", type: "checkbox" });
  const submitButton = h("button", { type: "submit" }, existing ? "Save changes" : "Create and publish");
  draftOnly.addEventListener("change", () => {
    submitButton.textContent = draftOnly.checked ? "Save the draft" : "Create and publish";
  });

  const showProblem = (p: Problem) => {
    errors.forEach((e) => e.replaceChildren());
    // "draft.tiers.name" is shown at the ticket types, "draft.venue.name" at the venue.
    let name = p.field;
    while (name && !errors.has(name)) name = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : undefined;
    const target = name ? errors.get(name) : undefined;
    if (target) target.textContent = p.message;
    problems.replaceChildren(problemNotice(target ? { ...p, message: "Please check the form." } : p));
  };

  const readDraft = (coverImageIds: string[]): DraftInit => ({
    title: title.el.value.trim(),
    description: description.value.trim(),
    category: category.value,
    tags: tags.el.value.split(",").map((t) => t.trim()).filter(Boolean),
    timeZone: existing?.draft?.timeZone || zone,
    startsAt: starts.el.value ? timestampFromDate(new Date(starts.el.value)) : undefined,
    endsAt: ends.el.value ? timestampFromDate(new Date(ends.el.value)) : undefined,
    location: onlineRadio.checked
      ? { case: "onlineUrl" as const, value: onlineUrl.el.value.trim() }
      : {
        case: "venue" as const,
        value: {
          name: venueName.el.value.trim(), address: address.el.value.trim(), city: city.el.value.trim(),
          latitude: Number(latitude.el.value.replace(",", ".")) || 0, longitude: Number(longitude.el.value.replace(",", ".")) || 0,
        },
      },
    capacity: Number(capacity.el.value) || 0,
    waitlistCap: Number(waitlistCap.el.value) || 0,
    tiers: tiers.read(),
    questions: questions.read(),
    coverImageIds,
    visibility: Number(visibility.value) as Visibility,
  });

  const submit = async (e: Event) => {
    e.preventDefault();
    submitButton.disabled = true;
    try {
      const file = cover.el.files?.[0];
      let coverImageIds = existing?.draft?.coverImageIds ?? [];
      try {
        if (file) coverImageIds = [await uploadImage(file)];
      } catch (err) {
        showProblem({ ...describe(err), field: "cover" });
        return;
      }
      const draft = readDraft(coverImageIds);
      const saved = await whenImageReady(() => (existing
        ? events.updateEvent({ eventId: existing.id, expectedVersion: existing.version, draft })
        : events.createEvent({ draft })));
      if (!saved) throw new Error("no event");
      if (!existing && !draftOnly.checked) {
        await events.publishEvent({ eventId: saved.id, expectedVersion: saved.version });
      }
      location.hash = `#/events/${saved.id}`;
    } catch (err) {
      showProblem(describe(err));
    } finally {
      submitButton.disabled = false;
    }
  };

  // A cover just uploaded is resized in the background: the API answers
  // IMAGE_PROCESSING with retry-after until it is ready.
  const whenImageReady = async (call: () => Promise<{ event?: ApiEvent }>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await call()).event;
      } catch (err) {
        const p = describe(err);
        if (p.reason !== "IMAGE_PROCESSING" || attempt >= 30) throw err;
        problems.replaceChildren(status("Preparing the cover image…"));
        await new Promise((r) => setTimeout(r, (p.retryAfterSecs ?? 1) * 1000));
      }
    }
  };

  // Cancelling tells everyone who joined (a mail and their open pages).
  const cancelSection = existing && (existing.status === EventStatus.PUBLISHED || existing.status === EventStatus.DRAFT)
    ? reasonForm({
      id: "f-cancel-reason", summary: "Cancel this event", label: "Why (everyone who joined is told)",
      button: "Cancel the event", empty: "Please say why: everyone who joined is told.", className: "danger",
      act: async (reason) => {
        await events.cancelEvent({ eventId: existing.id, expectedVersion: existing.version, reason });
        location.hash = `#/events/${existing.id}`;
      },
    })
    : null;

  const publishDraft = existing?.status === EventStatus.DRAFT
    ? h("button", { type: "button", class: "secondary", onclick: () => void events.publishEvent({
      eventId: existing.id, expectedVersion: existing.version,
    }).then(() => {
      location.hash = `#/events/${existing.id}`;
    }, (err) => showProblem(describe(err))) }, "Publish as it was saved")
    : null;

  show(main, h("h1", {}, existing ? `Edit “${existing.draft?.title}”` : "Create an event"),
    h("form", { onsubmit: (e: Event) => void submit(e), novalidate: true },
      title.field,
      h("div", { class: "field" }, h("label", { for: "f-description" }, "Description"), description, errorSlot("draft.description")),
      h("div", { class: "field" }, h("label", { for: "f-category" }, "Category"), category, errorSlot("draft.category")),
      tags.field, starts.field, ends.field,
      h("fieldset", {}, h("legend", {}, "Where"),
        h("div", { class: "field check" }, inPerson, h("label", { for: "f-in-person" }, "In person")),
        h("div", { class: "field check" }, onlineRadio, h("label", { for: "f-online" }, "Online")),
        errorSlot("draft.location"), venueFields, onlineFields),
      capacity.field, waitlistCap.field, tiers.el, questions.el,
      h("div", { class: "field" }, h("label", { for: "f-visibility" }, "Who can find it"), visibility, errorSlot("draft.visibility")),
      cover.field,
      existing ? null : h("div", { class: "field check" }, draftOnly, h("label", { for: "f-draft-only" }, "Keep it as a draft for now")),
      problems, submitButton, publishDraft),
    cancelSection);
}

/** A list of rows (ticket types, questions) with add and remove buttons;
 *  `read` gives the rows' values in order. */
function rows<T>(name: string, legend: string, addText: string, error: HTMLElement, initial: T[],
  row: (item: T | undefined, n: number) => { cells: HTMLElement[]; read: () => Omit<T, "$typeName" | "$unknown"> }) {
  const list = h("ol", { class: "rows" });
  const readers = new Map<HTMLElement, () => Omit<T, "$typeName" | "$unknown">>();
  let n = 0;
  const add = (item?: T) => {
    const k = n++;
    const r = row(item, k);
    const li = h("li", { class: "row" }, ...r.cells);
    li.append(h("button", { type: "button", class: "secondary", onclick: () => {
      readers.delete(li);
      li.remove();
    } }, `Remove ${name === "tiers" ? "ticket type" : "question"} ${k + 1}`));
    readers.set(li, r.read);
    list.append(li);
  };
  initial.forEach((i) => add(i));
  const el = h("fieldset", { id: `f-${name}` }, h("legend", {}, legend), error, list,
    h("button", { type: "button", class: "secondary", onclick: () => add() }, addText));
  return { el, read: () => [...list.children].map((li) => (readers.get(li as HTMLElement) as () => Omit<T, "$typeName" | "$unknown">)()) };
}

function cell(id: string, label: string, el: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, label), el);
}

/** A date as `datetime-local` wants it, in the browser's zone. */
function local(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
