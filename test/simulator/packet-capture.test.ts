/**
 * Bench figure 6's packet capture (dev/bench/packet-capture.ts): a pcap file's TCP payload per
 * 10 ms, and a real capture (tcpdump on the loopback interface) that counts exactly the bytes a
 * server sent from its port, not those it received. The real capture skips, saying why, where
 * tcpdump is missing or may not capture.
 */
import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { captureUnavailable, payloadSeries, startCapture } from "../../dev/bench/packet-capture.ts";

/** A pcap file (microseconds, Ethernet) of IPv4 TCP frames to one peer: [unix ms, sequence number, payload bytes]. */
function pcapOf(frames: [number, number, number][]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(128, 16);
  header.writeUInt32LE(1, 20);
  const parts = [header];
  for (const [ms, seq, payload] of frames) {
    // Captured: Ethernet (14) + IPv4 (20) + TCP with options (32), the payload cut off by the snaplen.
    const frame = Buffer.alloc(14 + 20 + 32);
    frame.writeUInt16BE(0x0800, 12);
    frame[14] = 0x45;
    frame.writeUInt16BE(20 + 32 + payload, 16);
    frame[14 + 9] = 6;
    frame.writeUInt32BE(seq, 14 + 20 + 4);
    frame[14 + 20 + 12] = 8 << 4;
    const record = Buffer.alloc(16);
    record.writeUInt32LE(Math.floor(ms / 1000), 0);
    record.writeUInt32LE(Math.round((ms % 1000) * 1000), 4);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length + payload, 12);
    parts.push(record, frame);
  }
  return Buffer.concat(parts);
}

describe("packet capture", () => {
  it("counts each segment's new TCP payload from its IP length, in 10 ms buckets; ACKs and retransmissions apart", () => {
    const t = 1_800_000_000_000;
    const top = 2 ** 32 - 600;
    const got = payloadSeries(
      pcapOf([
        [t, top, 1000],
        [t + 4, 0, 0],
        [t + 5, (top + 1000) % 2 ** 32, 500],
        // Sent again (a retransmission), then new bytes past the sequence number's wrap.
        [t + 7, (top + 1000) % 2 ** 32, 500],
        [t + 1000, (top + 1500) % 2 ** 32, 65_483],
      ]),
    );
    expect(got.series).toEqual([
      [t, 1500],
      [t + 1000, 65_483],
    ]);
    expect(got.segments).toBe(3);
    expect(got.payloadBytes).toBe(66_983);
    expect(got.retransmittedBytes).toBe(500);
    expect(got.averageRate).toBe(66_983);
  });

  const unavailable = captureUnavailable();
  it.skipIf(unavailable !== undefined)(
    `captures the bytes a server sends from its port, not those it receives${unavailable ? ` (skipped: ${unavailable})` : ""}`,
    async () => {
      const server = createServer();
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      const port = (server.address() as { port: number }).port;
      const capture = await startCapture(port);
      try {
        const accepted = once(server, "connection");
        const client = connect(port, "127.0.0.1");
        const [socket] = (await accepted) as [Socket];
        client.write(Buffer.alloc(70_000));
        let received = 0;
        const all = new Promise<void>((resolve) =>
          client.on("data", (c: Buffer) => {
            received += c.length;
            if (received === 300_000) resolve();
          }),
        );
        socket.end(Buffer.alloc(300_000));
        await all;
        client.destroy();
        const got = await capture.stop();
        expect(got.payloadBytes).toBe(300_000);
        expect(got.dropped).toBe(0);
      } finally {
        await capture.stop().catch(() => undefined);
        server.close();
      }
    },
  );
});
