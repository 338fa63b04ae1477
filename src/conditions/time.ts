/**
 * Local time of day in an IANA time zone, fast enough to run per evaluation.
 *
 * The UTC offset of a zone is asked from Intl once per zone and 15-minute slice of UTC time and
 * then reused: modern zone transitions happen at whole quarter hours, so the offset is constant
 * within a slice. Both caches are bounded so arbitrary zone names from profile data cannot grow
 * memory without limit.
 */
const DAY = 86_400_000;
const HOUR = 3_600_000;
const SLICE = 15 * 60_000;
const MAX_ZONES = 512;

const formatters = new Map<string, Intl.DateTimeFormat | null>();
/** Per zone, offsets by 15-minute slice (every UTC offset transition falls on a slice boundary). */
const offsets = new Map<string, Map<number, number>>();
/** Slices kept per zone: caps and calendar windows ask about a handful of period starts at a time. */
const SLICES_PER_ZONE = 256;

function formatter(zone: string): Intl.DateTimeFormat | null {
  let f = formatters.get(zone);
  if (f !== undefined) return f;
  try {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    f = null;
  }
  if (formatters.size >= MAX_ZONES) formatters.clear();
  formatters.set(zone, f);
  return f;
}

/** Whether `zone` is a time zone this runtime knows (IANA name or "UTC"). */
export function isValidTimeZone(zone: unknown): zone is string {
  return typeof zone === 'string' && zone.length > 0 && zone.length <= 64 && formatter(zone) !== null;
}

/** Milliseconds to add to a UTC instant to get the wall-clock time in `zone`. */
// The last answer, checked before the map: most evaluations in a row ask about the same zone.
let lastZone = '';
let lastSlice = NaN;
let lastOffset = 0;

export function zoneOffset(zone: string, at: number): number {
  const slice = Math.floor(at / SLICE);
  if (zone === lastZone && slice === lastSlice) return lastOffset;
  let slices = offsets.get(zone);
  const hit = slices?.get(slice);
  if (hit !== undefined) {
    lastZone = zone;
    lastSlice = slice;
    lastOffset = hit;
    return hit;
  }
  const f = formatter(zone);
  let offset = 0;
  if (f !== null) {
    const parts: Record<string, number> = {};
    for (const p of f.formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
    const wall = Date.UTC(parts.year ?? 1970, (parts.month ?? 1) - 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
    offset = Math.round((wall - (at - (((at % 1000) + 1000) % 1000))) / 60_000) * 60_000;
  }
  if (!slices) {
    if (offsets.size >= MAX_ZONES) offsets.clear();
    slices = new Map();
    offsets.set(zone, slices);
  } else if (slices.size >= SLICES_PER_ZONE) slices.clear();
  slices.set(slice, offset);
  lastZone = zone;
  lastSlice = slice;
  lastOffset = offset;
  return offset;
}

/** Hour of the day, 0–23, at `at` in `zone`. */
export function localHour(zone: string, at: number): number {
  return hourAt(at, zoneOffset(zone, at));
}

/** Day of the week, 0 = Sunday … 6 = Saturday, at `at` in `zone`. */
export function localWeekday(zone: string, at: number): number {
  return weekdayAt(at, zoneOffset(zone, at));
}

/** The customer's zone: traits.timezone when it is a valid IANA zone, else the workspace zone, else UTC. */
let lastWorkspaceZone = '';
let lastWorkspaceResult = 'UTC';

export function customerZone(traitZone: unknown, workspaceZone: string): string {
  if (traitZone !== undefined && isValidTimeZone(traitZone)) return traitZone;
  if (workspaceZone === lastWorkspaceZone) return lastWorkspaceResult;
  const zone = isValidTimeZone(workspaceZone) ? workspaceZone : 'UTC';
  lastWorkspaceZone = workspaceZone;
  lastWorkspaceResult = zone;
  return zone;
}

// The customer-zone offset for the last (trait zone, workspace zone, time slice) asked: a rule set
// evaluated on one profile asks for it once per rule that reads local time.
let memoTrait: unknown = null;
let memoWorkspace = '';
let memoSlice = NaN;
let memoOffset = 0;

/** UTC offset (ms) of the customer's zone at `at`: customerZone + zoneOffset, memoized on the last call. */
export function customerOffset(traitZone: unknown, workspaceZone: string, at: number): number {
  const slice = Math.floor(at / SLICE);
  if (traitZone === memoTrait && workspaceZone === memoWorkspace && slice === memoSlice) return memoOffset;
  const offset = zoneOffset(customerZone(traitZone, workspaceZone), at);
  memoTrait = traitZone;
  memoWorkspace = workspaceZone;
  memoSlice = slice;
  memoOffset = offset;
  return offset;
}

/** Hour (0–23) and weekday (0 = Sunday) given a UTC offset. */
export function hourAt(at: number, offset: number): number {
  const local = at + offset;
  return Math.floor((((local % DAY) + DAY) % DAY) / HOUR);
}

export function weekdayAt(at: number, offset: number): number {
  const days = Math.floor((at + offset) / DAY);
  // 1970-01-01 was a Thursday (4).
  return (((days + 4) % 7) + 7) % 7;
}
