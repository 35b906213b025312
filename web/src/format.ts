// How events read on the page: dates in the event's own time zone, seats
// and registrations in words, image links on the API's origin.
import { RegistrationStatus } from "./gen/cityevents/join/v1/join_pb";

/** A registration's state, as its holder and the organizer read it. */
export const REGISTRATION_WORDS: Partial<Record<RegistrationStatus, string>> = {
  [RegistrationStatus.CONFIRMED]: "Going",
  [RegistrationStatus.WAITLISTED]: "On the waitlist",
  [RegistrationStatus.CHECKED_IN]: "Checked in",
  [RegistrationStatus.CANCELLED]: "Cancelled",
};

/** "Sat, 12 Dec, 19:30" in `timeZone` (the event's), for `locale`. */
export function when(date: Date, timeZone: string, locale = "en-GB"): string {
  const zone = timeZone || "UTC";
  try {
    return new Intl.DateTimeFormat(locale, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: zone,
    }).format(date);
  } catch {
    return date.toISOString();
  }
}

/** What the seats look like: `capacity` 0 means unlimited. */
export function seats(capacity: number, confirmed: number, waitlisted: number): string {
  if (capacity <= 0) return `${confirmed} going`;
  const left = capacity - confirmed;
  if (left > 0) return `${left} of ${capacity} seats left`;
  return waitlisted > 0 ? `Full · ${waitlisted} on the waitlist` : "Full · join the waitlist";
}

/** An image link the API gave (`/media/…`), made absolute on `apiBase`. */
export function imageUrl(link: string, apiBase: string): string {
  if (!link) return "";
  return link.startsWith("/") ? apiBase.replace(/\/$/, "") + link : link;
}
