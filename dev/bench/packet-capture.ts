/**
 * The source's rate measured from the packets (`npm run bench -- --only 6 --capture`): tcpdump
 * captures, on the loopback interface, the TCP segments a simulator sends from its port (headers
 * only, `-s 128`, into a pcap file); the TCP payload of each segment is counted at its capture time
 * in 10 ms buckets, the same series the simulator's meter gives (so the same worst-1 s/10 s
 * computation applies). What is counted is what left the source's socket onto the network, as
 * a capture on the wire sees it, independent of the simulator's own sampling of its socket queues.
 *
 * tcpdump needs root or CAP_NET_RAW: when it is missing or not permitted, `startCapture` says why
 * and the bench prints that reason instead of the packet rows. Segments the kernel dropped before
 * tcpdump read them are reported (tcpdump's "dropped by kernel" count): a capture with drops
 * undercounts.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const BUCKET_MS = 10;

export interface CaptureFigures {
  /** [bucket start (ms, unix), payload bytes] per 10 ms, in order. */
  series: [number, number][];
  /** New bytes (each byte of the stream once). */
  payloadBytes: number;
  /** Bytes sent again (retransmissions), not in the series. */
  retransmittedBytes: number;
  segments: number;
  /** Payload bytes per second from the first to the last payload segment. */
  averageRate: number;
  /** Segments tcpdump says the kernel dropped (0 when it said nothing). */
  dropped: number;
}

export interface Capture {
  stop(): Promise<CaptureFigures>;
}

/** Why a capture cannot run here, or undefined when tcpdump can capture on the loopback interface. */
export function captureUnavailable(): string | undefined {
  const probe = spawnSync(
    "tcpdump",
    ["-i", "lo", "-c", "1", "-w", "/dev/null", "-G", "1", "-W", "1", "tcp port 9"],
    {
      encoding: "utf8",
      timeout: 2000,
    },
  );
  if (probe.error && (probe.error as NodeJS.ErrnoException).code === "ENOENT") {
    return "tcpdump is not installed (apt-get install tcpdump)";
  }
  const said = `${probe.stderr ?? ""}`;
  if (/permission|not permitted|operation not permitted/i.test(said)) {
    return `tcpdump may not capture here (${said.trim().split("\n")[0]}): run the bench as root or give tcpdump CAP_NET_RAW`;
  }
  if (probe.status !== 0 && probe.signal === null && !/listening on/i.test(said)) {
    return `tcpdump failed: ${said.trim().split("\n")[0] ?? `exit ${probe.status}`}`;
  }
  return undefined;
}

/** Starts capturing the TCP segments sent from `port` on the loopback interface; resolves once tcpdump listens. */
export async function startCapture(port: number): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), "fb-capture-"));
  const file = join(dir, "source.pcap");
  // -U: write each packet as it comes (nothing lost in tcpdump's buffer at the stop); -B: 16 MiB
  // kernel buffer, so a burst of 64 KiB loopback segments is not dropped.
  const child: ChildProcess = spawn(
    "tcpdump",
    [
      "-i",
      "lo",
      "-n",
      "-s",
      "128",
      "-B",
      "16384",
      "--immediate-mode",
      "-U",
      "-w",
      file,
      `tcp and src port ${port}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
      if (/listening on/.test(stderr)) resolve();
    });
    child.once("error", reject);
    void exited.then((code) => reject(new Error(`tcpdump exited (code ${code}): ${stderr.trim()}`)));
  });
  let stopped: Promise<CaptureFigures> | undefined;
  return {
    // Once: a second call (the bench's clean-up after a failed case) gets the first one's answer.
    stop() {
      stopped ??= (async () => {
        // tcpdump writes each segment once it has read it (-U): wait until the file stops growing
        // (it may be behind on a loaded machine), as SIGINT ends it without reading what is left.
        let size = -1;
        for (let quiet = 0, waited = 0; quiet < 3 && waited < 100; waited++) {
          await sleep(100);
          const now = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
          quiet = now === size ? quiet + 1 : 0;
          size = now;
        }
        child.kill("SIGINT");
        await exited;
        try {
          const dropped = Number(/(\d+) packets? dropped by kernel/.exec(stderr)?.[1] ?? 0);
          return { ...payloadSeries(readFileSync(file)), dropped };
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      })();
      return stopped;
    },
  };
}

/**
 * The TCP payload per 10 ms of a pcap file (link types Ethernet, as Linux's loopback has, Linux
 * cooked capture v1 or raw IP; IPv4 and IPv6). Only new bytes count in the series (sequence space
 * beyond the highest sent on that connection): a retransmission (a loaded machine's tail-loss
 * probe on loopback) is counted apart, in `retransmittedBytes`.
 */
export function payloadSeries(pcap: Buffer): Omit<CaptureFigures, "dropped"> {
  const magic = pcap.readUInt32LE(0);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const big = pcap.readUInt32BE(0);
  if (!little && big !== 0xa1b2c3d4 && big !== 0xa1b23c4d) throw new Error("not a pcap file");
  const nanos = (little ? magic : big) === 0xa1b23c4d;
  const u32 = (at: number) => (little ? pcap.readUInt32LE(at) : pcap.readUInt32BE(at));
  const linkType = u32(20);
  const linkHeader = linkType === 1 ? 14 : linkType === 113 ? 16 : linkType === 101 ? 0 : -1;
  if (linkHeader < 0) throw new Error(`pcap link type ${linkType} is not handled`);
  const buckets = new Map<number, number>();
  /** Per connection (the peer's address and port): the sequence number after the highest byte sent. */
  const highest = new Map<string, number>();
  let payloadBytes = 0;
  let retransmittedBytes = 0;
  let segments = 0;
  let first: number | undefined;
  let last: number | undefined;
  for (let at = 24; at + 16 <= pcap.length; ) {
    const ms = u32(at) * 1000 + u32(at + 4) / (nanos ? 1e6 : 1e3);
    const captured = u32(at + 8);
    const data = pcap.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    const tcp = tcpSegment(data, linkHeader);
    if (!tcp) continue;
    const { peer, seq, length, syn } = tcp;
    if (syn) {
      highest.set(peer, (seq + 1) >>> 0);
      continue;
    }
    if (length <= 0) continue;
    const end = (seq + length) >>> 0;
    const top = highest.get(peer) ?? seq;
    const ahead = (end - top) >>> 0;
    const fresh = ahead < 2 ** 31 ? Math.min(ahead, length) : 0;
    if (ahead < 2 ** 31) highest.set(peer, end);
    retransmittedBytes += length - fresh;
    if (fresh === 0) continue;
    segments++;
    payloadBytes += fresh;
    first ??= ms;
    last = ms;
    const bucket = Math.floor(ms / BUCKET_MS) * BUCKET_MS;
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + fresh);
  }
  const series = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const seconds = first !== undefined && last !== undefined && last > first ? (last - first) / 1000 : 0;
  return {
    series,
    payloadBytes,
    retransmittedBytes,
    segments,
    averageRate: seconds > 0 ? payloadBytes / seconds : 0,
  };
}

/** A captured frame's TCP segment: its peer (destination), sequence number, payload length (from the IP lengths: the capture holds headers only), SYN flag. */
function tcpSegment(
  frame: Buffer,
  linkHeader: number,
): { peer: string; seq: number; length: number; syn: boolean } | undefined {
  if (frame.length < linkHeader + 20) return undefined;
  const ip = frame.subarray(linkHeader);
  const version = ip[0]! >> 4;
  let ipHeader: number;
  let ipPayload: number;
  let peer: string;
  if (version === 4) {
    if (ip[9] !== 6) return undefined;
    ipHeader = (ip[0]! & 0x0f) * 4;
    ipPayload = ip.readUInt16BE(2) - ipHeader;
    peer = ip.subarray(16, 20).join(".");
  } else if (version === 6) {
    if (ip[6] !== 6) return undefined;
    ipHeader = 40;
    ipPayload = ip.readUInt16BE(4);
    peer = ip.subarray(24, 40).toString("hex");
  } else return undefined;
  if (ip.length < ipHeader + 14) return undefined;
  const t = ip.subarray(ipHeader);
  return {
    peer: `${peer}:${t.readUInt16BE(2)}`,
    seq: t.readUInt32BE(4),
    length: ipPayload - (t[12]! >> 4) * 4,
    syn: (t[13]! & 0x02) !== 0,
  };
}
