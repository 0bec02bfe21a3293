/**
 * Cheap streaming checks that an archive body is whole. Flussonic may not send Content-Length and
 * may close cleanly too early; a body cut inside a top-level MP4 box or inside a 188-byte TS packet
 * is caught here, without buffering the body.
 */
import type { ArchiveFormat } from "./archive.ts";

export interface ContainerCheck {
  /** Feeds the next bytes; throws ContainerError at the first inconsistency. */
  feed(chunk: Uint8Array): void;
  /** Declares the end of the body; throws ContainerError when it ends inside a box or packet. */
  finish(): void;
}

export class ContainerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ContainerError";
  }
}

/** A checker for one body of the given format. */
export function containerCheck(format: ArchiveFormat): ContainerCheck {
  return format === "mp4" ? new Mp4BoxFraming() : new TsPacketFraming();
}

const TS_PACKET = 188;

class TsPacketFraming implements ContainerCheck {
  private offset = 0;
  feed(chunk: Uint8Array): void {
    // Every packet starts with the sync byte 0x47.
    let i = (TS_PACKET - (this.offset % TS_PACKET)) % TS_PACKET;
    for (; i < chunk.length; i += TS_PACKET) {
      if (chunk[i] !== 0x47) {
        throw new ContainerError(`MPEG-TS sync byte missing at byte ${this.offset + i}`);
      }
    }
    this.offset += chunk.length;
  }
  finish(): void {
    if (this.offset === 0) throw new ContainerError("empty body");
    if (this.offset % TS_PACKET !== 0) {
      throw new ContainerError(
        `body ends inside an MPEG-TS packet (${this.offset} bytes is not a multiple of 188)`,
      );
    }
  }
}

class Mp4BoxFraming implements ContainerCheck {
  private offset = 0;
  /** Absolute offset where the next top-level box header starts. */
  private nextBox = 0;
  /** Header bytes of the box starting at nextBox, gathered across chunks. */
  private header: number[] = [];
  private boxes = 0;

  feed(chunk: Uint8Array): void {
    const end = this.offset + chunk.length;
    while (this.nextBox < end) {
      const at = this.nextBox - this.offset;
      // Gather up to 16 header bytes (size, type, optional 64-bit size).
      while (this.header.length < 16 && at + this.header.length < chunk.length) {
        this.header.push(chunk[at + this.header.length]!);
        if (this.header.length === 8 && this.headerSize32() !== 1) break;
      }
      if (this.header.length < 8) break;
      const size32 = this.headerSize32();
      let size: number;
      if (size32 === 1) {
        if (this.header.length < 16) break;
        size = Number(Buffer.from(this.header.slice(8, 16)).readBigUInt64BE(0));
      } else {
        size = size32;
      }
      const type = String.fromCharCode(...this.header.slice(4, 8));
      if (!/^[A-Za-z0-9 ]{4}$/.test(type)) {
        throw new ContainerError(
          `not an MP4 box at byte ${this.nextBox} (type bytes ${JSON.stringify(type)})`,
        );
      }
      if (size === 0) throw new ContainerError(`MP4 box "${type}" at byte ${this.nextBox} has open size`);
      if (size < (size32 === 1 ? 16 : 8)) {
        throw new ContainerError(`MP4 box "${type}" at byte ${this.nextBox} has impossible size ${size}`);
      }
      this.nextBox += size;
      this.header = [];
      this.boxes++;
    }
    this.offset = end;
  }

  private headerSize32(): number {
    const h = this.header;
    return ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
  }

  finish(): void {
    if (this.offset === 0) throw new ContainerError("empty body");
    if (this.header.length > 0 || this.nextBox !== this.offset) {
      throw new ContainerError(
        `body ends inside an MP4 box (${this.offset} bytes received, the last box needs ${this.nextBox})`,
      );
    }
    if (this.boxes === 0) throw new ContainerError("no MP4 box in body");
  }
}
