import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  configJsonSchema,
  configWarnings,
  listedStreams,
  loadConfigFile,
  parseConfig,
  resolveAllCredentials,
} from "../../functions/config/config.ts";

const minimal = { bucket: "my-dvr-backup", sources: [{ name: "s1", url: "https://streamer1.example:8443" }] };

function problems(data: unknown): string[] {
  try {
    parseConfig(typeof data === "string" ? data : JSON.stringify(data), "cfg.json");
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

function withSource(extra: Record<string, unknown>) {
  return { ...minimal, sources: [{ ...minimal.sources[0], ...extra }] };
}

describe("configuration: good files", () => {
  it("fills sensible defaults for everything but bucket, source name and url", () => {
    const c = parseConfig(JSON.stringify(minimal), "cfg.json");
    expect(c.prefix).toBe("flussonic/");
    expect(c.schedule).toBe("rate(5 minutes)");
    const s = c.sources[0]!;
    expect(s).toMatchObject({
      streams: "all",
      format: "mp4",
      retentionDays: 7,
      maxConcurrentCopies: 2,
      auth: { type: "none" },
    });
  });
  it("accepts the issue's example and the commented example in the repo", () => {
    const c = loadConfigFile("config/example.jsonc");
    expect(c.sources.map((s) => s.name)).toEqual(["streamer1", "streamer2"]);
    expect(listedStreams(c.sources[1]!)).toEqual([
      { name: "cam1", retentionDays: 20, format: "mp4" },
      { name: "cam2", retentionDays: 7, format: "mp4" },
    ]);
  });
  it("keeps the committed JSON Schema in step with the validator", () => {
    expect(JSON.parse(readFileSync("config/schema.json", "utf8"))).toEqual(configJsonSchema());
  });
});

describe("configuration: each kind of bad input names the file, the JSON path and what is expected", () => {
  it("unknown key", () => {
    expect(problems({ ...minimal, retention: 3 })).toEqual(['cfg.json: retention: unknown key "retention"']);
  });
  it("an inline secret is refused with a hint", () => {
    const p = problems(
      withSource({ auth: { type: "basic", username: "u", passwordEnv: "P", password: "hunter2" } }),
    );
    expect(p).toEqual([
      'cfg.json: sources[0].auth.password: unknown key "password": secrets never go in the file; put it in an environment variable and name it (passwordEnv, tokenEnv)',
    ]);
    expect(p.join()).not.toContain("hunter2");
  });
  it("negative retention", () => {
    expect(problems(withSource({ retentionDays: -3 }))).toEqual([
      "cfg.json: sources[0].retentionDays: expected a number of days greater than 0 (got -3)",
    ]);
  });
  it("a cap of 0", () => {
    expect(problems(withSource({ maxConcurrentCopies: 0, maxBandwidthMbps: 0 }))).toEqual([
      "cfg.json: sources[0].maxConcurrentCopies: expected at least 1 concurrent copy (got 0)",
      "cfg.json: sources[0].maxBandwidthMbps: expected a bandwidth cap greater than 0 Mbit/s (got 0)",
    ]);
  });
  it("duplicate source name and a stream listed twice, reported with the other problems", () => {
    const p = problems({
      bucket: "b",
      sources: [
        { name: "s1", url: "http://a", streams: ["cam1", { name: "cam1", retentionDays: 7 }] },
        { name: "s1", url: "http://b" },
      ],
    });
    expect(p).toContain('cfg.json: sources[0].streams[1]: stream "cam1" is listed twice');
    expect(p).toContain('cfg.json: sources[1].name: source "s1" is defined twice');
    expect(p).toContain(
      "cfg.json: bucket: expected an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-'",
    );
  });
  it("missing required fields", () => {
    expect(problems({ sources: [{ url: "http://a" }] })).toEqual([
      "cfg.json: bucket: is required: expected the S3 bucket name",
      "cfg.json: sources[0].name: is required: expected string",
    ]);
  });
  it("names that cannot go into S3 keys", () => {
    expect(problems(withSource({ name: "../etc" }))[0]).toMatch(
      /^cfg\.json: sources\[0\]\.name: expected a source name of/,
    );
    expect(problems(withSource({ streams: ["a/../b"] }))[0]).toMatch(
      /^cfg\.json: sources\[0\]\.streams\[0\]: stream name must be/,
    );
  });
  it("wrong auth type, wrong url scheme, wrong schedule, window length", () => {
    const p = problems({
      ...withSource({ url: "ftp://x", auth: { type: "digest" } }),
      schedule: "every 5 minutes",
      maxWindowSeconds: 700,
    });
    expect(p).toEqual([
      'cfg.json: schedule: expected a schedule like "rate(5 minutes)"',
      "cfg.json: maxWindowSeconds: expected one of 60, 120, 180, 240, 300, 360, 600, 720, 900, 1200, 1800, 3600 seconds (divisors of a day) (got 700)",
      "cfg.json: sources[0].url: expected an http:// or https:// URL",
      'cfg.json: sources[0].auth.type: expected auth.type to be one of "none", "basic", "bearer", "token"',
    ]);
  });
  it("streams all with a play token (no admin API to list streams)", () => {
    expect(problems(withSource({ auth: { type: "token", tokenEnv: "T" } }))).toEqual([
      'cfg.json: sources[0].streams: streams "all" needs the admin API to list streams; with a play token or index "playback" list the streams by name',
    ]);
  });
  it("not JSON: line and column", () => {
    expect(problems('{\n  "bucket": "abc",\n  "sources": [}\n')).toEqual([
      "cfg.json:3:15: not valid JSON: ValueExpected",
    ]);
  });
  it("a file that does not exist", () => {
    expect(() => loadConfigFile("/nonexistent/cfg.json")).toThrow(
      "/nonexistent/cfg.json: cannot read the config file: no such file",
    );
  });
});

describe("secrets", () => {
  const cfg = parseConfig(
    JSON.stringify(
      withSource({
        url: "https://streamer1.example",
        auth: { type: "basic", username: "backup", passwordEnv: "S1_PASSWORD" },
      }),
    ),
    "cfg.json",
  );
  it("an environment variable that is not set is named with the field", () => {
    expect(() => resolveAllCredentials(cfg, "cfg.json", {})).toThrow(
      "cfg.json: sources[0].auth.passwordEnv: environment variable S1_PASSWORD is not set",
    );
  });
  it("resolved secrets never print themselves", () => {
    const creds = resolveAllCredentials(cfg, "cfg.json", { S1_PASSWORD: "hunter2" }).get("s1")!;
    const shown = [
      JSON.stringify(creds),
      inspect(creds, { depth: 5 }),
      String((creds as { password: unknown }).password),
    ];
    for (const s of shown) expect(s).not.toContain("hunter2");
    expect(creds.type === "basic" && creds.password.reveal()).toBe("hunter2");
  });
});

describe("configuration: credentials never go in clear", () => {
  const basic = { type: "basic", username: "backup", passwordEnv: "S1_PASSWORD" };

  it("refuses credentials on http:// (url or archiveUrl), naming the field and the way out", () => {
    expect(problems(withSource({ url: "http://streamer1.example:8080", auth: basic }))).toEqual([
      "cfg.json: sources[0].url: the basic credentials would go in clear over http://: use https://, or set sources[0].allowCredentialsOverHttp to true to accept that anyone on the path can read them",
    ]);
    expect(
      problems(
        withSource({
          url: "https://streamer1.example",
          archiveUrl: "http://streamer1.example:8002",
          auth: { type: "token", tokenEnv: "S1_TOKEN" },
          streams: ["cam1"],
        }),
      ),
    ).toEqual([
      "cfg.json: sources[0].archiveUrl: the token credentials would go in clear over http://: use https://, or set sources[0].allowCredentialsOverHttp to true to accept that anyone on the path can read them",
    ]);
  });

  it("accepts https://, no auth, this machine (loopback), or the explicit field, which it warns about", () => {
    expect(problems(withSource({ url: "https://streamer1.example", auth: basic }))).toEqual([]);
    expect(problems(withSource({}))).toEqual([]);
    for (const url of ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]) {
      expect(problems(withSource({ url, auth: basic })), url).toEqual([]);
    }
    const allowed = parseConfig(
      JSON.stringify(
        withSource({ url: "http://streamer1.example:8080", auth: basic, allowCredentialsOverHttp: true }),
      ),
      "cfg.json",
    );
    expect(allowed.sources[0]!.allowCredentialsOverHttp).toBe(true);
    expect(configWarnings(allowed)).toEqual([
      "source s1: its basic credentials go in clear over http://streamer1.example:8080 (allowCredentialsOverHttp): anyone on the network path can read them",
    ]);
    expect(
      configWarnings(
        parseConfig(JSON.stringify(withSource({ url: "https://s.example", auth: basic })), "cfg.json"),
      ),
    ).toEqual([]);
  });
});

describe("spoolMiB: the copier's spool threshold (issue 26 item 1)", () => {
  it("defaults to 256 MiB; 0 turns the spool off", () => {
    expect(parseConfig(JSON.stringify(minimal), "cfg.json").spoolMiB).toBe(256);
    expect(parseConfig(JSON.stringify({ ...minimal, spoolMiB: 0 }), "cfg.json").spoolMiB).toBe(0);
  });
  it("a bad value names the file, the field and what is expected", () => {
    expect(problems({ ...minimal, spoolMiB: -1 })).toEqual([
      "cfg.json: spoolMiB: expected 0 (no spool) or more MiB (got -1)",
    ]);
    expect(problems({ ...minimal, spoolMiB: 1.5 })[0]).toMatch(
      /^cfg\.json: spoolMiB: expected a whole number of MiB/,
    );
    expect(problems({ ...minimal, spoolMiB: 6000 })).toEqual([
      "cfg.json: spoolMiB: expected at most 5120 MiB (S3's largest PutObject is 5 GiB) (got 6000)",
    ]);
  });
});
