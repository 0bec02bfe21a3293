/**
 * What a player needs to know of an init segment before loading media: each track's codec as an
 * RFC 6381 string (for HLS `CODECS`) and the video resolution. Read from the `moov` with
 * mp4-join.ts's box iterator:
 * - H.264 `avc1`/`avc3` + `avcC` → `avc1.PPCCLL` (profile, constraint flags, level, hex);
 * - HEVC `hvc1`/`hev1` + `hvcC` → `hvc1.{space}{profile}.{compat}.{tier}{level}[.constraints]`;
 * - AAC and other MPEG-4 audio `mp4a` + `esds` → `mp4a.40.{audio object type}` (`mp4a.{oti}`
 *   for other object types); `Opus`, `fLaC`, `ac-3`, `ec-3` by name;
 * - resolution from the visual sample entry (coded width/height), else `tkhd` (display size).
 */
import { children } from "./mp4-join.ts";

export interface TrackCodec {
  trackId: number;
  /** `hdlr` handler: "vide", "soun", ... */
  handler: string;
  /** RFC 6381 codec, undefined when the sample entry is unknown or missing. */
  codec: string | undefined;
  width?: number;
  height?: number;
}

/** The tracks of a `moov` box (the whole box, header included), in `moov` order. */
export function readTrackCodecs(moov: Buffer): TrackCodec[] {
  const out: TrackCodec[] = [];
  for (const trak of children(moov, 8)) {
    if (trak.type !== "trak") continue;
    const t: TrackCodec = { trackId: 0, handler: "", codec: undefined };
    let tkhdSize: { width: number; height: number } | undefined;
    for (const c of children(moov, trak.start + 8, trak.end)) {
      if (c.type === "tkhd") {
        const v1 = moov[c.start + 8] === 1;
        t.trackId = moov.readUInt32BE(c.start + (v1 ? 28 : 20));
        const at = c.start + (v1 ? 96 : 84);
        if (at + 8 <= c.end) {
          tkhdSize = { width: moov.readUInt32BE(at) >>> 16, height: moov.readUInt32BE(at + 4) >>> 16 };
        }
      }
      if (c.type !== "mdia") continue;
      for (const m of children(moov, c.start + 8, c.end)) {
        if (m.type === "hdlr") t.handler = moov.toString("latin1", m.start + 16, m.start + 20);
        if (m.type !== "minf") continue;
        for (const s of children(moov, m.start + 8, m.end)) {
          if (s.type !== "stbl") continue;
          for (const d of children(moov, s.start + 8, s.end)) {
            if (d.type === "stsd" && d.end - d.start > 16) sampleEntry(moov, d.start + 16, d.end, t);
          }
        }
      }
    }
    if (t.handler === "vide" && t.width === undefined && tkhdSize && tkhdSize.width > 0) {
      t.width = tkhdSize.width;
      t.height = tkhdSize.height;
    }
    out.push(t);
  }
  return out;
}

/**
 * The codecs of all tracks for HLS `CODECS` ("avc1.64001f,mp4a.40.2"), or undefined unless every
 * track's codec is known (a partial list would make a player refuse the stream), and the first
 * video track's resolution.
 */
export function initSegmentMedia(moov: Buffer): { codecs?: string; width?: number; height?: number } {
  const tracks = readTrackCodecs(moov);
  const video = tracks.find((t) => t.handler === "vide" && t.width !== undefined);
  const known = tracks.length > 0 && tracks.every((t) => t.codec !== undefined);
  return {
    ...(known ? { codecs: tracks.map((t) => t.codec).join(",") } : {}),
    ...(video?.width !== undefined && video.height !== undefined
      ? { width: video.width, height: video.height }
      : {}),
  };
}

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

function sampleEntry(moov: Buffer, at: number, end: number, t: TrackCodec): void {
  if (at + 8 > end) return;
  const size = moov.readUInt32BE(at);
  const type = moov.toString("latin1", at + 4, at + 8);
  const entryEnd = Math.min(at + size, end);
  if (["avc1", "avc3", "hvc1", "hev1"].includes(type)) {
    if (at + 36 <= entryEnd) {
      t.width = moov.readUInt16BE(at + 32);
      t.height = moov.readUInt16BE(at + 34);
    }
    for (const c of children(moov, at + 86, entryEnd)) {
      if (c.type === "avcC" && c.end - c.start >= 12) {
        t.codec = `${type}.${hex2(moov[c.start + 9]!)}${hex2(moov[c.start + 10]!)}${hex2(moov[c.start + 11]!)}`;
      }
      if (c.type === "hvcC" && c.end - c.start >= 21) t.codec = hevcCodec(type, moov, c.start + 8);
    }
    return;
  }
  if (type === "mp4a") {
    // QuickTime sound sample description versions 1 and 2 carry 16 and 36 more bytes.
    const version = moov.readUInt16BE(at + 16);
    const childrenAt = at + 36 + (version === 1 ? 16 : version === 2 ? 36 : 0);
    for (const c of children(moov, childrenAt, entryEnd)) {
      if (c.type === "esds") t.codec = esdsCodec(moov, c.start + 12, c.end);
    }
    t.codec ??= "mp4a.40.2";
    return;
  }
  const named: Record<string, string> = { Opus: "opus", fLaC: "flac", "ac-3": "ac-3", "ec-3": "ec-3" };
  t.codec = named[type];
}

/** `hvc1.1.6.L93.B0` from an `hvcC` payload at `p` (ISO/IEC 14496-15 annex E). */
function hevcCodec(type: string, b: Buffer, p: number): string {
  const byte1 = b[p + 1]!;
  const space = ["", "A", "B", "C"][byte1 >> 6]!;
  const tier = byte1 & 0x20 ? "H" : "L";
  const profile = byte1 & 0x1f;
  // The 32 compatibility flags in reverse bit order, as hex without leading zeros.
  let compat = b.readUInt32BE(p + 2);
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = (reversed << 1) | (compat & 1);
    compat >>>= 1;
  }
  const constraints = [...b.subarray(p + 6, p + 12)];
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const level = b[p + 12]!;
  return [
    type,
    `${space}${profile}`,
    (reversed >>> 0).toString(16).toUpperCase(),
    `${tier}${level}`,
    ...constraints.map((c) => c.toString(16).toUpperCase()),
  ].join(".");
}

/** `mp4a.40.2` from an `esds` payload `[p, end)` (an ES_Descriptor, ISO/IEC 14496-1). */
function esdsCodec(b: Buffer, p: number, end: number): string | undefined {
  const descriptor = (at: number): { tag: number; body: number; end: number } | undefined => {
    if (at + 2 > end) return undefined;
    const tag = b[at]!;
    let size = 0;
    let q = at + 1;
    for (let i = 0; i < 4 && q < end; i++) {
      const x = b[q++]!;
      size = (size << 7) | (x & 0x7f);
      if (!(x & 0x80)) break;
    }
    return { tag, body: q, end: Math.min(q + size, end) };
  };
  const es = descriptor(p);
  if (es?.tag !== 0x03) return undefined;
  const flags = b[es.body + 2]!;
  let q = es.body + 3;
  if (flags & 0x80) q += 2;
  if (flags & 0x40) q += 1 + (b[q] ?? 0);
  if (flags & 0x20) q += 2;
  const config = descriptor(q);
  if (config?.tag !== 0x04 || config.body >= config.end) return undefined;
  const oti = b[config.body]!;
  if (oti !== 0x40) return `mp4a.${hex2(oti).toUpperCase()}`;
  const specific = descriptor(config.body + 13);
  if (specific?.tag !== 0x05 || specific.body >= specific.end) return "mp4a.40.2";
  let aot = b[specific.body]! >> 3;
  if (aot === 31 && specific.body + 1 < specific.end) {
    aot = 32 + (((b[specific.body]! & 7) << 3) | (b[specific.body + 1]! >> 5));
  }
  return `mp4a.40.${aot}`;
}
