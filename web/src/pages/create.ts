// Create and publish an event, with a cover: the upload first (REST
// multipart), then CreateEvent with the image's id, then PublishEvent at
// the version CreateEvent answered.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";

import { events } from "../client";
import { h, problemNotice, show, status } from "../dom";
import { describe, type Problem } from "../errors";
import { Visibility } from "../gen/cityevents/event/v1/event_pb";
import { uploadImage } from "../upload";

export function createPage(main: HTMLElement): void {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const errors = new Map<string, HTMLElement>();
  const input = (name: string, label: string, attrs: Record<string, string> = {}, hint?: string) => {
    const id = `f-${name.replace(/\W/g, "-")}`;
    const el = h("input", { id, name, "aria-describedby": `${id}-error`, ...attrs });
    const error = h("p", { id: `${id}-error`, class: "field-error" });
    errors.set(name, error);
    return { el, field: h("div", { class: "field" }, h("label", { for: id }, label),
      hint ? h("p", { class: "muted" }, hint) : null, el, error) };
  };
  const title = input("draft.title", "Title", { required: "" });
  const description = h("textarea", { id: "f-description", name: "description", rows: "4" });
  const starts = input("draft.starts_at", "Starts", { type: "datetime-local", required: "" }, `Times are in ${zone}.`);
  const ends = input("draft.ends_at", "Ends", { type: "datetime-local", required: "" });
  const venue = input("draft.venue.name", "Venue");
  const city = input("draft.venue.city", "City");
  const latitude = input("draft.venue.latitude", "Latitude", { inputmode: "decimal" });
  const longitude = input("draft.venue.longitude", "Longitude", { inputmode: "decimal" });
  const capacity = input("draft.capacity", "Seats (0 for no limit)", { type: "number", min: "0", value: "0" });
  const cover = input("cover", "Cover image", { type: "file", accept: "image/jpeg,image/png,image/webp" });
  // The API names the cover as the draft's image ids.
  errors.set("draft.cover_image_ids", errors.get("cover") as HTMLElement);
  const problems = h("div", { "aria-live": "assertive" });
  const submitButton = h("button", { type: "submit" }, "Create and publish");

  const showProblem = (p: Problem) => {
    errors.forEach((e) => e.replaceChildren());
    const target = p.field ? errors.get(p.field) : undefined;
    if (target) target.textContent = p.message;
    problems.replaceChildren(problemNotice(target ? { ...p, message: "Please check the form." } : p));
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    submitButton.disabled = true;
    try {
      const file = cover.el.files?.[0];
      let coverImageIds: string[] = [];
      try {
        coverImageIds = file ? [await uploadImage(file)] : [];
      } catch (err) {
        showProblem({ ...describe(err), field: "cover" });
        return;
      }
      const draft = {
        title: title.el.value.trim(),
        description: description.value.trim(),
        category: "community",
        timeZone: zone,
        startsAt: starts.el.value ? timestampFromDate(new Date(starts.el.value)) : undefined,
        endsAt: ends.el.value ? timestampFromDate(new Date(ends.el.value)) : undefined,
        location: {
          case: "venue" as const,
          value: {
            name: venue.el.value.trim(), city: city.el.value.trim(),
            latitude: Number(latitude.el.value) || 0, longitude: Number(longitude.el.value) || 0,
          },
        },
        capacity: Number(capacity.el.value) || 0,
        coverImageIds,
        visibility: Visibility.PUBLIC,
      };
      const created = await createWhenReady(draft);
      if (!created) throw new Error("no event");
      await events.publishEvent({ eventId: created.id, expectedVersion: created.version });
      location.hash = `#/events/${created.id}`;
    } catch (err) {
      showProblem(describe(err));
    } finally {
      submitButton.disabled = false;
    }
  };

  // A cover just uploaded is resized in the background: the API answers
  // IMAGE_PROCESSING with retry-after until it is ready.
  const createWhenReady = async (draft: Parameters<typeof events.createEvent>[0]["draft"]) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await events.createEvent({ draft })).event;
      } catch (err) {
        const p = describe(err);
        if (p.reason !== "IMAGE_PROCESSING" || attempt >= 30) throw err;
        problems.replaceChildren(status("Preparing the cover image…"));
        await new Promise((r) => setTimeout(r, (p.retryAfterSecs ?? 1) * 1000));
      }
    }
  };

  show(main, h("h1", {}, "Create an event"),
    h("form", { onsubmit: (e: Event) => void submit(e), novalidate: true },
      title.field,
      h("div", { class: "field" }, h("label", { for: "f-description" }, "Description"), description),
      starts.field, ends.field, venue.field, city.field, latitude.field, longitude.field, capacity.field, cover.field,
      problems, submitButton));
}
