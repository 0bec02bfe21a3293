/**
 * The synthesized roles' permissions, enforced in front of the S3/SQS emulator (which checks
 * none): an HTTP hop that knows each function by the access key its invocations sign with
 * (lambda-stack.ts gives each function its own) and refuses, as AWS does, every S3 or SQS call
 * that function's role does not allow (role-policy.ts). A request the hop cannot map to an IAM
 * action is refused too, so a new kind of call cannot slip past unevaluated. Requests signed with
 * any other key (the test's own) are forwarded unchecked.
 */
import type { IncomingMessage } from "node:http";
import { answer, HttpHop } from "./http-hop.ts";
import { allows, type PolicyStatement, type RoleRequest } from "./role-policy.ts";

export interface RoleCaller {
  /** The function's logical id, to name it in a refusal. */
  name: string;
  statements: PolicyStatement[];
}

/** The access key of a SigV4 Authorization header. */
export function signingKeyOf(authorization: string | undefined): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? "")?.[1];
}

const S3_OBJECT_SUBRESOURCES: Record<string, Record<string, string>> = {
  GET: {
    uploadId: "s3:ListMultipartUploadParts",
    versionId: "s3:GetObjectVersion",
    tagging: "s3:GetObjectTagging",
    retention: "s3:GetObjectRetention",
    "legal-hold": "s3:GetObjectLegalHold",
    acl: "s3:GetObjectAcl",
  },
  PUT: {
    tagging: "s3:PutObjectTagging",
    retention: "s3:PutObjectRetention",
    "legal-hold": "s3:PutObjectLegalHold",
    acl: "s3:PutObjectAcl",
  },
  DELETE: { uploadId: "s3:AbortMultipartUpload", versionId: "s3:DeleteObjectVersion" },
};

/** The IAM actions and resources of one S3 request (path style), or a reason it is not mapped. */
function s3Requests(req: IncomingMessage, body: Buffer): RoleRequest[] | string {
  const url = new URL(req.url ?? "/", "http://hop");
  const method = req.method ?? "GET";
  const [bucket, ...rest] = url.pathname.slice(1).split("/");
  const key = rest.map(decodeURIComponent).join("/");
  const q = url.searchParams;
  const out: RoleRequest[] = [];
  const object = (action: string, k = key) => out.push({ action, resource: `arn:aws:s3:::${bucket}/${k}` });
  if (!bucket) return `${method} /: not a bucket request`;
  if (!key) {
    const bucketAction = (action: string) => out.push({ action, resource: `arn:aws:s3:::${bucket}` });
    if ((method === "GET" || method === "HEAD") && q.has("uploads"))
      bucketAction("s3:ListBucketMultipartUploads");
    else if (method === "GET" && q.has("versions")) bucketAction("s3:ListBucketVersions");
    else if (method === "POST" && q.has("delete")) {
      for (const m of body.toString("utf8").matchAll(/<Key>([^<]*)<\/Key>/g))
        object("s3:DeleteObject", m[1]!);
    } else if ((method === "GET" || method === "HEAD") && [...q.keys()].every((k) => LIST_PARAMS.has(k)))
      bucketAction("s3:ListBucket");
    else return `${method} ${url.pathname}${url.search}: an S3 bucket call this proxy does not map`;
  } else {
    const m = method === "HEAD" ? "GET" : method;
    const sub = Object.entries(S3_OBJECT_SUBRESOURCES[m] ?? {}).find(([p]) => q.has(p));
    if (sub) object(sub[1]);
    else if (m === "GET") object("s3:GetObject");
    else if (m === "PUT" || m === "POST") object("s3:PutObject");
    else if (m === "DELETE") object("s3:DeleteObject");
    else return `${method} ${url.pathname}: an S3 object call this proxy does not map`;
    const copySource = req.headers["x-amz-copy-source"];
    if (typeof copySource === "string") {
      out.push({
        action: "s3:GetObject",
        resource: `arn:aws:s3:::${decodeURIComponent(copySource.replace(/^\//, ""))}`,
      });
    }
    if (req.headers["x-amz-object-lock-mode"] || req.headers["x-amz-object-lock-retain-until-date"]) {
      object("s3:PutObjectRetention");
    }
    if (req.headers["x-amz-object-lock-legal-hold"]) object("s3:PutObjectLegalHold");
  }
  if (req.headers["x-amz-bypass-governance-retention"] === "true") {
    for (const r of [...out]) out.push({ action: "s3:BypassGovernanceRetention", resource: r.resource });
  }
  return out;
}

/** ListObjectsV2's query parameters: a plain listing of the bucket. */
const LIST_PARAMS = new Set([
  "list-type",
  "prefix",
  "delimiter",
  "continuation-token",
  "start-after",
  "max-keys",
  "encoding-type",
  "fetch-owner",
  "marker",
  "x-id",
]);

/** The SQS batch calls are authorized as their single-message action. */
const SQS_ACTION: Record<string, string> = {
  SendMessageBatch: "SendMessage",
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
};

function sqsRequests(
  action: string,
  body: Buffer,
  pseudo: { region: string; account: string },
): RoleRequest[] | string {
  let input: { QueueUrl?: string; QueueName?: string };
  try {
    input = JSON.parse(body.toString("utf8") || "{}");
  } catch {
    return `SQS ${action}: a body that is not JSON`;
  }
  const name = input.QueueName ?? input.QueueUrl?.split("/").pop();
  if (!name) return `SQS ${action}: no queue named`;
  return [
    {
      action: `sqs:${SQS_ACTION[action] ?? action}`,
      resource: `arn:aws:sqs:${pseudo.region}:${pseudo.account}:${name}`,
    },
  ];
}

export class RolePolicyProxy {
  /** Every refused call: `<function> <action> <resource>`. */
  readonly refused: string[] = [];
  /** Every checked call, allowed or not. */
  readonly checked: string[] = [];
  readonly callers = new Map<string, RoleCaller>();
  /**
   * Buckets with Object Lock (the template's ObjectLockEnabled): S3 refuses an upload into them
   * without Content-MD5 or a checksum header, which the emulator does not check either.
   */
  readonly objectLockBuckets = new Set<string>();
  #hop: HttpHop | undefined;

  /** A hop in front of the emulator at `target`; add the functions' keys to `callers`. */
  static async start(target: string, pseudo: { region: string; account: string }): Promise<RolePolicyProxy> {
    const proxy = new RolePolicyProxy();
    proxy.#hop = await HttpHop.start(target, (req, res, forward) => {
      const caller = proxy.callers.get(signingKeyOf(req.headers.authorization) ?? "");
      if (!caller) return false;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const target_ = req.headers["x-amz-target"];
        const sqsAction = typeof target_ === "string" ? target_.replace(/^AmazonSQS\./, "") : undefined;
        const requests = sqsAction ? sqsRequests(sqsAction, body, pseudo) : s3Requests(req, body);
        const lockRefusal = proxy.#objectLockRefusal(req);
        if (lockRefusal) {
          proxy.refused.push(`${caller.name} ${lockRefusal}`);
          const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters</Message><RequestId>role-policy</RequestId></Error>`;
          answer(req, res, 400, { "content-type": "application/xml" }, xml);
          return;
        }
        const denied =
          typeof requests === "string"
            ? [requests]
            : requests
                .filter((r) => !allows(caller.statements, r))
                .map((r) => `${r.action} on ${r.resource}`);
        if (typeof requests !== "string") {
          for (const r of requests) proxy.checked.push(`${caller.name} ${r.action} ${r.resource}`);
        }
        if (denied.length === 0) return forward(body);
        const message = `${caller.name}'s role is not authorized to perform ${denied.join(", ")}`;
        proxy.refused.push(`${caller.name} ${denied.join(", ")}`);
        if (sqsAction) {
          answer(
            req,
            res,
            403,
            { "content-type": "application/x-amz-json-1.0", "x-amzn-query-error": "AccessDenied;Sender" },
            JSON.stringify({ __type: "com.amazonaws.sqs#AccessDenied", message }),
          );
          return;
        }
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${message.replaceAll("&", "&amp;").replaceAll("<", "&lt;")}</Message><RequestId>role-policy</RequestId></Error>`;
        answer(req, res, 403, { "content-type": "application/xml" }, xml);
      });
      return true;
    });
    return proxy;
  }

  /** Why S3 would refuse this upload into an Object Lock bucket, or undefined. */
  #objectLockRefusal(req: IncomingMessage): string | undefined {
    if (req.method !== "PUT" || req.headers["x-amz-target"]) return undefined;
    const url = new URL(req.url ?? "/", "http://hop");
    const [bucket, ...key] = url.pathname.slice(1).split("/");
    if (!bucket || key.length === 0 || !this.objectLockBuckets.has(bucket)) return undefined;
    if (url.searchParams.has("uploadId") || url.searchParams.has("tagging")) return undefined;
    const names = Object.keys(req.headers);
    const summed =
      names.includes("content-md5") ||
      names.some((h) => h.startsWith("x-amz-checksum-")) ||
      /x-amz-checksum-/.test(String(req.headers["x-amz-trailer"] ?? ""));
    return summed ? undefined : `PUT ${url.pathname} without Content-MD5 or checksum (Object Lock bucket)`;
  }

  get url(): string {
    return this.#hop!.url;
  }

  close(): Promise<void> {
    return this.#hop!.close();
  }
}
