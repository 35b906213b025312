// Image upload: the one call that is not gRPC-web (a browser sends files
// as multipart/form-data; the BFF streams them to the media service).
import { ConnectError, Code } from "@connectrpc/connect";

import { apiBase } from "./client";
import { session } from "./session";

/** Uploads `file`; resolves to the image's id for `cover_image_ids`. */
export async function uploadImage(file: File): Promise<string> {
  const body = new FormData();
  body.append("file", file);
  const token = session.get()?.accessToken;
  const res = await fetch(`${apiBase}/v1/media`, {
    method: "POST",
    body,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    // The REST error body carries the same reason and message as gRPC.
    const meta = new Headers();
    if (json.reason) meta.set("x-cityevents-error", json.reason);
    const retry = res.headers.get("retry-after");
    if (retry) meta.set("retry-after", retry);
    throw new ConnectError(json.message ?? res.statusText, HTTP_CODES[res.status] ?? Code.Unknown, meta);
  }
  return json.id as string;
}

const HTTP_CODES: Record<number, Code> = {
  400: Code.InvalidArgument, 401: Code.Unauthenticated, 403: Code.PermissionDenied, 404: Code.NotFound,
  409: Code.AlreadyExists, 413: Code.ResourceExhausted, 415: Code.InvalidArgument, 422: Code.FailedPrecondition,
  429: Code.ResourceExhausted, 503: Code.Unavailable, 504: Code.DeadlineExceeded,
};
