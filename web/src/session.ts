// The signed-in session, kept in this browser's localStorage.

export interface Session {
  accessToken: string;
  refreshToken: string;
  displayName: string;
  userId: string;
}

const KEY = "cityevents.session";
const listeners = new Set<() => void>();

export const session = {
  get(): Session | null {
    try {
      return JSON.parse(localStorage.getItem(KEY) ?? "null") as Session | null;
    } catch {
      return null;
    }
  },
  /** Stores `s` (null signs out); `quiet` skips the listeners (a token
   *  refresh changes nothing on the page). */
  set(s: Session | null, opts: { quiet?: boolean } = {}): void {
    if (s) localStorage.setItem(KEY, JSON.stringify(s));
    else localStorage.removeItem(KEY);
    if (!opts.quiet) listeners.forEach((f) => f());
  },
  onChange(f: () => void): void {
    listeners.add(f);
  },
};
