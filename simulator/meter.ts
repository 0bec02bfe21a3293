/**
 * What the source sees: archive downloads running at once and the bytes per second leaving it.
 *
 * A server's writes are not what goes on the wire: the kernel accepts megabytes into a socket's
 * send buffer (about 4 MB here) before the peer has read anything, so counting at `write()` shows
 * a burst at the start of every download whatever the client does. On Linux the meter therefore
 * counts bytes the peer has acknowledged (written minus the socket's unacknowledged queue from
 * /proc/net/tcp, sampled every 10 ms): the rate on the source's network. Elsewhere it falls back
 * to counting writes (mode "write").
 */
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";

const BUCKET_MS = 10;

interface Tracked {
  socket: Socket;
  delivered: number;
  ending: boolean;
  /** "localPort:remotePort", kept for after the socket is destroyed (its kernel queue lives on). */
  ports: string;
  /** Bytes the socket had handed to the kernel when it was destroyed. */
  final?: number;
}

export class DownloadMeter {
  active = 0;
  peakActive = 0;
  downloads = 0;
  bytesServed = 0;
  /** "wire": bytes acknowledged by the peer; "write": bytes written by the server. */
  readonly mode: "wire" | "write";
  readonly #rates = new RateBuckets();
  readonly #tracked = new Map<Socket, Tracked>();
  readonly #clock: () => number;
  #firstAt: number | undefined;
  #lastAt: number | undefined;
  #sampler: NodeJS.Timeout | undefined;
  #settled: (() => void)[] = [];
  #sampledAt: number | undefined;
  /**
   * Samples that came more than two ticks after the previous one (a busy event loop or CPU): the
   * previous sample's time and theirs. Bytes acknowledged in between are counted at the later one.
   */
  readonly lateSamples: [number, number][] = [];

  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
    this.mode = unackedQueues() ? "wire" : "write";
  }

  started(socket?: Socket): void {
    this.active++;
    this.downloads++;
    this.peakActive = Math.max(this.peakActive, this.active);
    if (this.mode !== "wire" || !socket) return;
    const t = this.#tracked.get(socket);
    if (t) t.ending = false;
    else
      this.#tracked.set(socket, {
        socket,
        delivered: dispatched(socket),
        ending: false,
        ports: `${socket.localPort}:${socket.remotePort}`,
      });
    if (!this.#sampler) {
      // The first tick's lateness counts too: it is due BUCKET_MS after now.
      this.#sampledAt = this.#clock();
      this.#sampler = setInterval(() => this.#sample(), BUCKET_MS);
    }
  }

  ended(socket?: Socket): void {
    this.active--;
    const t = socket && this.#tracked.get(socket);
    // Keep sampling until the kernel has delivered what the response left in the send buffer.
    if (t) t.ending = true;
  }

  /** Bytes written by the server (counted only in "write" mode). */
  sent(bytes: number): void {
    if (this.mode === "write") this.#add(bytes);
  }

  /** Resolves when every finished download's bytes have been delivered and counted. */
  settled(): Promise<void> {
    if (![...this.#tracked.values()].some((t) => t.ending)) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /** Highest bytes per second over any window of `windowMs` (10 ms resolution). */
  maxRate(windowMs: number): number {
    return this.#rates.maxRate(windowMs);
  }

  /** The bytes counted, per 10 ms bucket: [bucket start (ms, the meter's clock), bytes], in order. */
  series(): [number, number][] {
    return this.#rates.series();
  }

  /** Average bytes per second from the first to the last byte counted. */
  averageRate(): number {
    if (this.#firstAt === undefined || this.#lastAt === undefined || this.#lastAt <= this.#firstAt) return 0;
    return this.bytesServed / ((this.#lastAt - this.#firstAt) / 1000);
  }

  /** Starts a new measurement (downloads under way keep being counted). */
  reset(): void {
    this.peakActive = this.active;
    this.downloads = 0;
    this.bytesServed = 0;
    this.#rates.clear();
    this.lateSamples.length = 0;
    this.#firstAt = undefined;
    this.#lastAt = undefined;
  }

  close(): void {
    if (this.#sampler) clearInterval(this.#sampler);
    this.#sampler = undefined;
    this.#tracked.clear();
    for (const s of this.#settled.splice(0)) s();
  }

  #add(bytes: number): void {
    if (bytes <= 0) return;
    const at = this.#clock();
    this.bytesServed += bytes;
    this.#rates.add(bytes, at);
    this.#firstAt ??= at;
    this.#lastAt = at;
  }

  #sample(): void {
    const now = this.#clock();
    // A sample later than two ticks counts what was acknowledged meanwhile at its own time.
    if (this.#sampledAt !== undefined && now - this.#sampledAt > 2 * BUCKET_MS) {
      this.lateSamples.push([this.#sampledAt, now]);
    }
    this.#sampledAt = now;
    const queues = unackedQueues() ?? new Map<string, number>();
    for (const t of this.#tracked.values()) {
      const s = t.socket;
      // A connection closed after its response (Connection: close) is destroyed in Node while the
      // kernel still sends what it queued: follow that queue by the connection's ports until empty.
      if (s.destroyed) t.final ??= dispatched(s);
      const queued = queues.get(t.ports) ?? 0;
      const delivered = (t.final ?? dispatched(s)) - queued;
      this.#add(delivered - t.delivered);
      t.delivered = Math.max(t.delivered, delivered);
      if ((t.ending || t.final !== undefined) && queued === 0) this.#tracked.delete(s);
    }
    if (![...this.#tracked.values()].some((t) => t.ending)) {
      for (const r of this.#settled.splice(0)) r();
    }
    if (this.#tracked.size === 0) {
      clearInterval(this.#sampler);
      this.#sampler = undefined;
      this.#sampledAt = undefined;
    }
  }
}

/** Bytes the socket handed to the kernel. */
function dispatched(s: Socket): number {
  return s.bytesWritten - s.writableLength;
}

/** Unacknowledged send-queue bytes per "localPort:remotePort", or undefined where unavailable. */
function unackedQueues(): Map<string, number> | undefined {
  const out = new Map<string, number>();
  try {
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      const lines = readFileSync(file, "latin1").split("\n");
      for (let i = 1; i < lines.length; i++) {
        const f = lines[i]!.trim().split(/\s+/);
        if (f.length < 5) continue;
        const local = f[1]!.split(":")[1];
        const remote = f[2]!.split(":")[1];
        const tx = f[4]!.split(":")[0];
        if (!local || !remote || !tx) continue;
        out.set(`${Number.parseInt(local, 16)}:${Number.parseInt(remote, 16)}`, Number.parseInt(tx, 16));
      }
    }
  } catch {
    return undefined;
  }
  return out;
}

/** Bytes counted in 10 ms buckets; the highest rate over any sliding window. */
export class RateBuckets {
  bytes = 0;
  readonly #buckets = new Map<number, number>();

  add(bytes: number, atMs = performance.now()): void {
    this.bytes += bytes;
    const b = Math.floor(atMs / BUCKET_MS);
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + bytes);
  }

  clear(): void {
    this.bytes = 0;
    this.#buckets.clear();
  }

  /** [bucket start (ms), bytes] of every bucket that counted bytes, in order. */
  series(): [number, number][] {
    return [...this.#buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, n]) => [b * BUCKET_MS, n]);
  }

  /** Highest bytes per second over any window of `windowMs`. */
  maxRate(windowMs: number): number {
    if (this.#buckets.size === 0) return 0;
    const keys = [...this.#buckets.keys()].sort((a, b) => a - b);
    const width = Math.max(1, Math.round(windowMs / BUCKET_MS));
    let best = 0;
    let sum = 0;
    let tail = 0;
    for (const k of keys) {
      sum += this.#buckets.get(k)!;
      while (keys[tail]! <= k - width) {
        sum -= this.#buckets.get(keys[tail]!)!;
        tail++;
      }
      best = Math.max(best, sum);
    }
    return best / ((width * BUCKET_MS) / 1000);
  }
}
