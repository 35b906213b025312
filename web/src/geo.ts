// Places without a map service: a typed city's centre taken from the
// events the API knows there, and results laid out on a plain map
// (Web Mercator, fitted to the points) that needs no tiles.

export interface Point {
  latitude: number;
  longitude: number;
}

/** The middle of the points that have a place (0,0 means none), or null. */
export function centre(points: Point[]): Point | null {
  const placed = points.filter((p) => p.latitude !== 0 || p.longitude !== 0);
  if (placed.length === 0) return null;
  const sum = placed.reduce((a, p) => ({ latitude: a.latitude + p.latitude, longitude: a.longitude + p.longitude }),
    { latitude: 0, longitude: 0 });
  return { latitude: sum.latitude / placed.length, longitude: sum.longitude / placed.length };
}

/** Where each point falls in a `width`×`height` box with `pad` around,
 *  north up, the scale the same both ways; `null` for points without a
 *  place. One point (or many at one spot) lands in the middle. */
export function layout(points: Point[], width: number, height: number, pad = 24): ({ x: number; y: number } | null)[] {
  const merc = points.map((p) => (p.latitude !== 0 || p.longitude !== 0
    ? { x: p.longitude, y: (Math.log(Math.tan(Math.PI / 4 + (p.latitude * Math.PI) / 360)) * 180) / Math.PI }
    : null));
  const placed = merc.filter((m): m is { x: number; y: number } => m !== null);
  if (placed.length === 0) return merc.map(() => null);
  const minX = Math.min(...placed.map((m) => m.x));
  const maxX = Math.max(...placed.map((m) => m.x));
  const minY = Math.min(...placed.map((m) => m.y));
  const maxY = Math.max(...placed.map((m) => m.y));
  const spanX = maxX - minX;
  const spanY = maxY - minY;
  const scale = spanX === 0 && spanY === 0 ? 0
    : Math.min(spanX ? (width - 2 * pad) / spanX : Infinity, spanY ? (height - 2 * pad) / spanY : Infinity);
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  return merc.map((m) => (m ? { x: width / 2 + (m.x - cx) * scale, y: height / 2 - (m.y - cy) * scale } : null));
}

/** "800 m", "2.4 km", "35 km". */
export function distanceWords(km: number): string {
  if (km < 1) return `${Math.max(10, Math.round((km * 1000) / 10) * 10)} m`;
  return km < 10 ? `${km.toFixed(1)} km` : `${Math.round(km)} km`;
}

/** The points `km` north, south, east and west of a place. */
export function around(latitude: number, longitude: number, km: number): { latitude: number; longitude: number }[] {
  const dLat = km / 111.32;
  const dLng = km / (111.32 * Math.max(0.01, Math.cos((latitude * Math.PI) / 180)));
  return [{ latitude: latitude + dLat, longitude }, { latitude: latitude - dLat, longitude },
    { latitude, longitude: longitude + dLng }, { latitude, longitude: longitude - dLng }];
}
