// The API clients: generated from proto/cityevents/api/v1 (src/gen, `npm
// run gen`), over connect-web's gRPC-web transport to the BFF. The only
// thing added by hand is the caller's token, renewed when it runs out.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import {
  AccountService, DiscoveryService, EventsService, LiveService, RegistrationsService,
} from "./gen/cityevents/api/v1/api_pb";
import { session } from "./session";

/** The BFF: `VITE_API_BASE` at build time, else the page's own origin. */
export const apiBase: string = import.meta.env.VITE_API_BASE || location.origin;

/** Access tokens live minutes: one the API refuses is renewed with the
 *  refresh token (once, shared by every call waiting on it) and the call
 *  sent again. A refused refresh signs the person out. */
let refreshing: Promise<boolean> | undefined;
function renew(refused: string): Promise<boolean> {
  const s = session.get();
  if (!s) return Promise.resolve(false);
  // Another tab or call renewed it already.
  if (s.accessToken !== refused) return Promise.resolve(true);
  refreshing ??= (async () => {
    try {
      const fresh = (await plainAccount.refreshSession({ refreshToken: s.refreshToken })).session;
      if (!fresh) return false;
      session.set({ ...s, accessToken: fresh.accessToken, refreshToken: fresh.refreshToken }, { quiet: true });
      return true;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Unauthenticated) session.set(null);
      return false;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

const bearer: Interceptor = (next) => async (req) => {
  const token = session.get()?.accessToken;
  if (token) req.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(req);
  } catch (err) {
    // Streams are not resent (their message may be gone); their pages
    // reconnect on their own.
    if (!token || req.stream || !(err instanceof ConnectError) || err.code !== Code.Unauthenticated) throw err;
    if (!(await renew(token))) throw err;
    req.header.set("authorization", `Bearer ${session.get()?.accessToken ?? ""}`);
    return await next(req);
  }
};

const plain = createGrpcWebTransport({ baseUrl: apiBase });
const plainAccount = createClient(AccountService, plain);
const transport = createGrpcWebTransport({ baseUrl: apiBase, interceptors: [bearer] });

export const account = createClient(AccountService, transport);
export const events = createClient(EventsService, transport);
export const registrations = createClient(RegistrationsService, transport);
export const discovery = createClient(DiscoveryService, transport);
export const live = createClient(LiveService, transport);
