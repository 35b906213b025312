// Places without a geocoder: a typed city's centre taken from the events
// the API knows there, and results laid out on a map (Web Mercator at the
// zoom that fits them) with the ground drawn from a tile server when one
// is configured (VITE_MAP_TILES), plain without.

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

/** A map view: the zoom level (Web Mercator, 256-pixel tiles) at which all
 *  the placed points fit in `width`×`height` with `pad` around, each
 *  point's spot (`null` without a place), and the tiles that cover the
 *  view with where each goes, so a tile server (OpenStreetMap's or your
 *  own) can draw the ground under the pins. One point alone is shown at
 *  street level (zoom 15). */
export interface MapView {
  zoom: number;
  spots: ({ x: number; y: number } | null)[];
  tiles: { z: number; x: number; y: number; left: number; top: number }[];
}

const TILE = 256;

export function mapView(points: Point[], width: number, height: number, pad = 24, maxZoom = 15): MapView {
  const world = (p: Point) => ({
    x: (p.longitude + 180) / 360,
    y: (1 - Math.log(Math.tan(Math.PI / 4 + (Math.max(-85, Math.min(85, p.latitude)) * Math.PI) / 360)) / Math.PI) / 2,
  });
  const unit = points.map((p) => (p.latitude !== 0 || p.longitude !== 0 ? world(p) : null));
  const placed = unit.filter((u): u is { x: number; y: number } => u !== null);
  if (placed.length === 0) return { zoom: 0, spots: unit.map(() => null), tiles: [] };
  const [minX, maxX] = [Math.min(...placed.map((u) => u.x)), Math.max(...placed.map((u) => u.x))];
  const [minY, maxY] = [Math.min(...placed.map((u) => u.y)), Math.max(...placed.map((u) => u.y))];
  let zoom = maxZoom;
  while (zoom > 0 && ((maxX - minX) * TILE * 2 ** zoom > width - 2 * pad || (maxY - minY) * TILE * 2 ** zoom > height - 2 * pad)) zoom--;
  const size = TILE * 2 ** zoom;
  const left = ((minX + maxX) / 2) * size - width / 2;
  const top = ((minY + maxY) / 2) * size - height / 2;
  const spots = unit.map((u) => (u ? { x: u.x * size - left, y: u.y * size - top } : null));
  const tiles: MapView["tiles"] = [];
  const count = 2 ** zoom;
  for (let ty = Math.floor(top / TILE); ty * TILE < top + height; ty++) {
    if (ty < 0 || ty >= count) continue;
    for (let tx = Math.floor(left / TILE); tx * TILE < left + width; tx++) {
      tiles.push({ z: zoom, x: ((tx % count) + count) % count, y: ty, left: tx * TILE - left, top: ty * TILE - top });
    }
  }
  return { zoom, spots, tiles };
}

/** A tile's address from a template such as
 *  `https://tile.openstreetmap.org/{z}/{x}/{y}.png`. */
export function tileUrl(template: string, t: { z: number; x: number; y: number }): string {
  return template.replace("{z}", String(t.z)).replace("{x}", String(t.x)).replace("{y}", String(t.y));
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
