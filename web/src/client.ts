// The API clients: generated from proto/cityevents/api/v1 (src/gen, `npm
// run gen`), over connect-web's gRPC-web transport to the BFF. The only
// thing added by hand is the caller's token.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import {
  AccountService, DiscoveryService, EventsService, LiveService, RegistrationsService,
} from "./gen/cityevents/api/v1/api_pb";
import { session } from "./session";

/** The BFF: `VITE_API_BASE` at build time, else the page's own origin. */
export const apiBase: string = import.meta.env.VITE_API_BASE || location.origin;

const bearer: Interceptor = (next) => async (req) => {
  const token = session.get()?.accessToken;
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createGrpcWebTransport({ baseUrl: apiBase, interceptors: [bearer] });

export const account = createClient(AccountService, transport);
export const events = createClient(EventsService, transport);
export const registrations = createClient(RegistrationsService, transport);
export const discovery = createClient(DiscoveryService, transport);
export const live = createClient(LiveService, transport);
