/**
 * The lean S3 path signs as the AWS SDK's own SigV4 signer does (@smithy/signature-v4, configured
 * as the S3 client configures it): same signature for GET and PUT, with and without a session
 * token, for keys that need encoding. The emulator does not check signatures; AWS does.
 */
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import {
  canonicalQuery,
  encodeKey,
  parseListPage,
  s3SigningKey,
  signS3Request,
} from "../../functions/store/lean-s3.ts";
import { createS3Client } from "../../local/aws-clients.ts";

const sha256 = createS3Client({
  region: "eu-west-1",
  s3Endpoint: undefined,
  sqsEndpoint: undefined,
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
}).config.sha256;

describe("signS3Request", () => {
  const date = new Date(Date.UTC(2026, 11, 2, 1, 2, 3));
  const amzDate = "20261202T010203Z";
  const cases = [
    { method: "GET", key: ".backup/manifests/src/cam1.json", body: undefined, token: undefined },
    {
      method: "PUT",
      key: ".backup/manifests/src%201/caf%C3%A9.json",
      body: '{"name":"café"}',
      token: undefined,
    },
    { method: "PUT", key: "odd/it's (1)*!.json", body: "{}", token: "FwoGZXIvYXdzEBYaDExampleToken==" },
  ];
  for (const c of cases) {
    it(`${c.method} ${c.key}${c.token ? " with a session token" : ""}: the SDK signer's signature`, async () => {
      const host = "bucket.s3.eu-west-1.amazonaws.com";
      const path = `/${encodeKey(c.key)}`;
      const ours = new Map(
        signS3Request({
          method: c.method,
          path,
          host,
          body: c.body,
          amzDate,
          region: "eu-west-1",
          accessKeyId: "AKIDEXAMPLE",
          sessionToken: c.token,
          signingKey: s3SigningKey("secret", amzDate.slice(0, 8), "eu-west-1"),
        }),
      );
      const signer = new SignatureV4({
        credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: c.token },
        region: "eu-west-1",
        service: "s3",
        sha256,
        uriEscapePath: false,
        applyChecksum: true,
      });
      const signed = await signer.sign(
        {
          method: c.method,
          protocol: "https:",
          hostname: host,
          path,
          query: {},
          headers: { host, "x-amz-content-sha256": ours.get("x-amz-content-sha256")! },
          ...(c.body !== undefined ? { body: c.body } : {}),
        },
        { signingDate: date },
      );
      expect(ours.get("x-amz-date")).toBe(signed.headers["x-amz-date"]);
      expect(ours.get("authorization")).toBe(signed.headers.authorization);
      if (c.token) expect(ours.get("x-amz-security-token")).toBe(c.token);
    });
  }

  it("a listing (GET with a query string, path-style bucket): the SDK signer's signature", async () => {
    const host = "minio.example:9000";
    const path = "/bucket/";
    const params = {
      "list-type": "2",
      prefix: ".backup/manifests/src%201/",
      "continuation-token": "1/a+b=c d*~",
      "max-keys": "1000",
    };
    const query = canonicalQuery(Object.entries(params));
    expect(query).toBe(
      "continuation-token=1%2Fa%2Bb%3Dc%20d%2A~&list-type=2&max-keys=1000&prefix=.backup%2Fmanifests%2Fsrc%25201%2F",
    );
    const ours = new Map(
      signS3Request({
        method: "GET",
        path,
        query,
        host,
        body: undefined,
        amzDate,
        region: "us-east-1",
        accessKeyId: "AKIDEXAMPLE",
        signingKey: s3SigningKey("secret", amzDate.slice(0, 8), "us-east-1"),
      }),
    );
    const signer = new SignatureV4({
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
      region: "us-east-1",
      service: "s3",
      sha256,
      uriEscapePath: false,
      applyChecksum: true,
    });
    const signed = await signer.sign(
      {
        method: "GET",
        protocol: "http:",
        hostname: "minio.example",
        port: 9000,
        path,
        query: params,
        headers: { host, "x-amz-content-sha256": ours.get("x-amz-content-sha256")! },
      },
      { signingDate: date },
    );
    expect(ours.get("authorization")).toBe(signed.headers.authorization);
  });

  it("reads a ListObjectsV2 page as S3 writes it: keys, sizes, unescaped ETags, the next token", () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>p/a.json</Key><LastModified>2026-12-07T10:00:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>120</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>p/b&amp;c.json</Key><LastModified>2026-12-07T10:00:00.000Z</LastModified><ETag>"abc-2"</ETag><Size>7</Size></Contents><Contents><Key>p/d.json</Key><Size>0</Size></Contents></ListBucketResult>`;
    expect(parseListPage(xml)).toEqual({
      objects: [
        { key: "p/a.json", size: 120, etag: '"9b2cf535f27731c974343645a3985328"' },
        { key: "p/b&c.json", size: 7, etag: '"abc-2"' },
        { key: "p/d.json", size: 0 },
      ],
      next: "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
    });
    const last = xml.replace("<IsTruncated>true</IsTruncated>", "<IsTruncated>false</IsTruncated>");
    expect(parseListPage(last)?.next).toBeUndefined();
    expect(parseListPage("<ListBucketResult></ListBucketResult>")).toEqual({ objects: [], next: undefined });
    // Anything else is not an empty listing.
    expect(parseListPage("<html><body>gateway</body></html>")).toBeUndefined();
    expect(parseListPage("<Error><Code>NoSuchBucket</Code></Error>")).toBeUndefined();
  });

  it("encodes keys as the SDK does for S3 (each segment RFC 3986, slashes kept, % encoded again)", () => {
    expect(encodeKey("a/b c/it's(1)*!~.json")).toBe("a/b%20c/it%27s%281%29%2A%21~.json");
    expect(encodeKey(".backup/manifests/src%201/cam1.json")).toBe(".backup/manifests/src%25201/cam1.json");
  });
});
