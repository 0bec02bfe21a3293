/**
 * The service's metrics and health, in process with a moved clock: /healthz fails when the last
 * planner run is older than two schedules; copier events become counters with bounded labels.
 * And the S3 client of `--no-s3-checksums` against a store that refuses checksum headers.
 */

import { request } from "node:http";
import { hostname } from "node:os";
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { afterEach, expect, test } from "vitest";
import { startHarness } from "../../dev/kit/harness.ts";
import { PlainS3Proxy } from "../../dev/kit/plain-s3-proxy.ts";
import { sample } from "../../dev/kit/service-process.ts";
import { parseConfig } from "../../functions/config/config.ts";
import type { CopierEvent } from "../../functions/copier/copy-messages.ts";
import { createS3Client } from "../../local/aws-clients.ts";
import { startEmbedded } from "../../local/embedded.ts";
import { BackupMetrics, failureReason, serveMetrics } from "../../local/metrics.ts";
import type { SimFaults } from "../../simulator/simulator.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const config = parseConfig(
  JSON.stringify({
    bucket: "metrics-test",
    schedule: "rate(5 minutes)",
    sources: [{ name: "src1", url: "http://127.0.0.1:1", maxConcurrentCopies: 2 }],
  }),
  "metrics-test.json",
);
const message = {
  v: 1 as const,
  source: "src1",
  stream: "cam1",
  from: 1_800_000_000,
  duration: 600,
  format: "mp4" as const,
  leaseUntil: 1_800_003_600,
};

test("/healthz answers 503 once the last planner run is older than two schedules, 200 again after a run", async () => {
  let nowMs = 1_000_000;
  const metrics = new BackupMetrics({ config, scheduleMs: 300_000, nowMs: () => nowMs });
  const server = await serveMetrics(metrics, 0, "127.0.0.1");
  cleanups.push(() => server.close());
  const health = async () => {
    const res = await fetch(`${server.url}/healthz`);
    return `${res.status} ${await res.text()}`;
  };
  expect(await health()).toBe("200 ok: no planner run yet, started 0 s ago (limit 600 s, two schedules)\n");
  metrics.planned({ at: 1000, sources: [] });
  nowMs += 600_000;
  expect(await health()).toBe("200 ok: last planner run 600 s ago (limit 600 s, two schedules)\n");
  nowMs += 1000;
  metrics.planFailed();
  expect(await health()).toBe("503 unhealthy: last planner run 601 s ago (limit 600 s, two schedules)\n");
  metrics.planned({ at: 1601, sources: [] });
  expect(await health()).toBe("200 ok: last planner run 0 s ago (limit 600 s, two schedules)\n");
  expect((await fetch(`${server.url}/other`)).status).toBe(404);
});

test("copier events become windows, bytes, failures by reason and durations; back-off changes the gauges", async () => {
  const nowMs = 1_000_000;
  const metrics = new BackupMetrics({ config, scheduleMs: 300_000, nowMs: () => nowMs });
  metrics.event({ type: "copied", message, bytes: 5000, seconds: 2.5 });
  metrics.event({ type: "already-stored", message, bytes: 5000, seconds: 0.1 });
  metrics.event({
    type: "retry",
    message,
    reason: 'source src1: stream "cam1": HTTP 503',
    delaySeconds: 10,
    attempt: 1,
  });
  metrics.event({
    type: "dead-lettered",
    message,
    source: "src1",
    body: "{}",
    reason: "S3: cannot upload k: AccessDenied (HTTP 403)",
  } as CopierEvent);
  metrics.bytes("src1", 7000);
  metrics.pressure("src1", { limit: 1, pausedUntilMs: nowMs + 5000, reason: "overload" });
  const text = await metrics.registry.metrics();
  expect(sample(text, "flussonic_backup_windows_total", { source: "src1", outcome: "copied" })).toBe(1);
  expect(sample(text, "flussonic_backup_windows_total", { source: "src1", outcome: "already-stored" })).toBe(
    1,
  );
  expect(sample(text, "flussonic_backup_copied_bytes_total", { source: "src1" })).toBe(5000);
  expect(sample(text, "flussonic_backup_downloaded_bytes_total", { source: "src1" })).toBe(7000);
  expect(
    sample(text, "flussonic_backup_copy_failures_total", {
      source: "src1",
      reason: "http_503",
      result: "retry",
    }),
  ).toBe(1);
  expect(
    sample(text, "flussonic_backup_copy_failures_total", {
      source: "src1",
      reason: "s3_http_403",
      result: "dead-lettered",
    }),
  ).toBe(1);
  expect(sample(text, "flussonic_backup_copy_duration_seconds_bucket", { source: "src1", le: "5" })).toBe(1);
  expect(sample(text, "flussonic_backup_copy_duration_seconds_bucket", { source: "src1", le: "1" })).toBe(0);
  expect(sample(text, "flussonic_backup_source_concurrency_limit", { source: "src1" })).toBe(1);
  expect(sample(text, "flussonic_backup_source_backoff_paused", { source: "src1" })).toBe(1);
  expect(failureReason("source src1: download failed: the service is stopping (aborted)")).toBe("aborted");
  expect(failureReason('source src1: stream "cam1" window 1-600: incomplete body: cut')).toBe(
    "incomplete_body",
  );
});

/**
 * A copier under one simulator fault (its first download only), its events counted by the metrics:
 * the `copy_failures_total` series seen once the first failure is counted.
 */
async function failureLabels(
  faults: SimFaults,
  o: { copyTimeoutSeconds?: number; timeouts?: Record<string, number>; refuse?: boolean } = {},
): Promise<string[]> {
  const h = await startHarness({
    sim: { streams: [{ name: "cam1", bitrateBps: 800_000, ranges: [{ from: 0, to: 4e9 }] }], days: 1 },
    source: {
      retentionDays: 0.05,
      maxConcurrentCopies: 1,
      timeouts: { connectSeconds: 1, headersSeconds: 30, bodyIdleSeconds: 30, ...o.timeouts },
    },
  });
  cleanups.push(() => h.close());
  const metrics = new BackupMetrics({ config: h.config, scheduleMs: 300_000 });
  const rt = await h.runtime({
    onEvent: (e) => metrics.event(e),
    ...(o.copyTimeoutSeconds ? { copyTimeoutSeconds: o.copyTimeoutSeconds } : {}),
  });
  h.sim.setFaults({ ...faults, bodyFaultNext: 1 });
  expect((await rt.plan()).sources[0]!.planned.length).toBeGreaterThan(0);
  if (o.refuse) await h.sim.pauseListening(); // the index was read; now the port refuses
  await rt.startCopiers();
  const failures = async () =>
    (await metrics.registry.metrics())
      .split("\n")
      .filter((l) => l.startsWith("flussonic_backup_copy_failures_total{"));
  await expect.poll(failures, { timeout: 20_000, interval: 50 }).not.toEqual([]);
  await rt.stopCopiers(0);
  return (await failures()).map((l) => l.replace(/ \d+$/, ""));
}

const failureCases: [string, string, SimFaults, Parameters<typeof failureLabels>[1]][] = [
  ["a stalled body", "timeout", { stallAfterBytes: 10_000 }, { timeouts: { bodyIdleSeconds: 1 } }],
  ["a copy past its timeout", "timeout", { latencyMs: 10_000 }, { copyTimeoutSeconds: 2 }],
  ["a 503", "http_503", { target: "archive", failNext: 1, errorStatus: 503 }, {}],
  ["a refused connection", "connection", {}, { refuse: true }],
  ["a connection reset in the body", "download", { resetAfterBytes: 500_000 }, {}],
];
for (const [fault, reason, faults, options] of failureCases) {
  test(`failure label from a real fault: ${fault} is counted as \`${reason}\`, result \`retry\``, async () => {
    expect(await failureLabels(faults, options)).toEqual([
      `flussonic_backup_copy_failures_total{source="src1",reason="${reason}",result="retry"}`,
    ]);
  });
}

test("--no-s3-checksums: bookkeeping deletes reach a store that refuses checksum headers (Content-MD5 instead)", async () => {
  const emu = await startEmbedded(undefined);
  cleanups.push(() => emu.stop());
  const proxy = await PlainS3Proxy.start(emu.endpoints.s3Endpoint!);
  cleanups.push(() => proxy.close());
  const endpoints = { ...emu.endpoints, s3Endpoint: proxy.url };
  const plain = createS3Client({ ...endpoints, s3Without: { checksums: true } });
  const usual = createS3Client(endpoints);
  cleanups.push(() => {
    plain.destroy();
    usual.destroy();
  });
  await plain.send(new CreateBucketCommand({ Bucket: "plain-store" }));
  await plain.send(new PutObjectCommand({ Bucket: "plain-store", Key: "k", Body: "x" }));
  const del = new DeleteObjectsCommand({
    Bucket: "plain-store",
    Delete: { Objects: [{ Key: "k" }], Quiet: true },
  });
  await expect(usual.send(del)).rejects.toThrow();
  expect(proxy.refused).toHaveLength(1);
  expect(proxy.refused[0]).toMatch(/^POST x-amz-(sdk-)?checksum/);
  await expect(
    plain.send(
      new DeleteObjectsCommand({ Bucket: "plain-store", Delete: { Objects: [{ Key: "k" }], Quiet: true } }),
    ),
  ).resolves.toBeDefined();
  expect(proxy.refused).toHaveLength(1);
  expect((await plain.send(new ListObjectsV2Command({ Bucket: "plain-store" }))).KeyCount).toBe(0);
});

test("bound to loopback, /metrics refuses a Host of another name (DNS rebinding) and answers localhost, IPs and this machine", async () => {
  const metrics = new BackupMetrics({ config, scheduleMs: 300_000 });
  const server = await serveMetrics(metrics, 0, "127.0.0.1");
  cleanups.push(() => server.close());
  const { port } = new URL(server.url);
  // fetch() sets Host from the URL; node:http lets the test send the Host a rebound name would.
  const get = (host: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/metrics", headers: { host } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
      req.end();
    });
  const refused = await get(`evil.example:${port}`);
  expect(refused.status).toBe(421);
  expect(refused.text).toBe(
    'Host "evil.example:' +
      port +
      '" is not a name this metrics server answers to: it listens on 127.0.0.1 only; scrape it as localhost or 127.0.0.1, or listen on another address with --metrics-host\n',
  );
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `${hostname()}:${port}`, `[::1]:${port}`]) {
    const ok = await get(host);
    expect([host, ok.status]).toEqual([host, 200]);
    expect(ok.text).toContain("flussonic_backup_");
  }
});

test("bound to another address, /metrics answers any Host (scrapers name the machine as they like)", async () => {
  const metrics = new BackupMetrics({ config, scheduleMs: 300_000 });
  const server = await serveMetrics(metrics, 0, "0.0.0.0");
  cleanups.push(() => server.close());
  const { port } = new URL(server.url);
  const res = await new Promise<number>((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/healthz", headers: { host: "backup-host.example.internal" } },
      (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end();
  });
  expect(res).toBe(200);
});
