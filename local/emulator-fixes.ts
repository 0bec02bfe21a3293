/**
 * Load-time fixes of the embedded emulator (fauxqs 2.4.1) for S3 calls the backup relies on and the
 * emulator lacks, applied as its modules load so node_modules stays untouched (see
 * docs/design.md, "Emulator gaps"):
 * - ListMultipartUploads (`GET /{bucket}?uploads&prefix=`): answered from the emulator's own table
 *   of open uploads, so copiers can find and abort uploads left by a killed attempt, as on AWS.
 * - CompleteMultipartUpload reads part ETags without decoding numeric character references, so
 *   clients whose XML encoder writes the ETag's quotes as `&#34;` (Go's: rclone, the AWS CLI v2 is
 *   fine) fail with InvalidPart; the benchmark's rclone rows need this.
 * - The file store (`--embedded <dir>`) names each object's file after its key, so on a
 *   case-insensitive file system (macOS, Windows) the keys of streams "Cam1" and "cam1" would share
 *   one file, and one stream's windows would overwrite the other's. Upper-case letters are written
 *   percent-encoded in file names (`Cam1` → `%43am1`, as the store already encodes `%` and `:`),
 *   so file names never differ only in case; S3 keys are unchanged. Files an older version wrote
 *   are moved to their new names when the store loads.
 * - ChangeMessageVisibility to 0 with a state directory: the persisted message's receive count is
 *   set to NULL, a NOT NULL column, so the call fails after the message was made visible in memory
 *   and the SDK's retry then finds no such message in flight (ReceiptHandleIsInvalid). The fix
 *   clears only the receipt handle and deadline, as the in-memory change does. `run` makes aborted
 *   copies visible again this way when it stops.
 * - The file store writes and reads each object's data in one `writeFileSync`/`readFileSync`, which
 *   Node refuses for 2 GiB or more: storing such a window failed CompleteMultipartUpload after the
 *   parts were dropped (the SDK's retry then got InvalidPart), and reading one back would fail too.
 *   Both go through the file in slices (large-file-io.ts).
 * - Object Lock and legal holds, which fauxqs lacks: a bucket created with
 *   `x-amz-bucket-object-lock-enabled: true` answers GetObjectLockConfiguration as enabled (others
 *   404 ObjectLockConfigurationNotFoundError, as S3); Put/GetObjectLegalHold and the
 *   `x-amz-object-lock-legal-hold` header of PutObject/CopyObject set and read an object's legal
 *   hold (400 InvalidRequest on a bucket without Object Lock); DeleteObject(s) of a held object is
 *   refused with 403 AccessDenied, as S3 refuses to delete a held version. Kept in memory (not in
 *   `--embedded` state); there are no versions, so an overwrite still replaces the bytes.
 * - Request bodies are limited to 11 MiB, where S3 takes parts and PutObjects up to 5 GiB: the
 *   copier's parts, sized from the window (part-upload.ts partsFor), may be larger, and a spooled
 *   window up to `spoolMiB` (256 by default, at most 5120) is one PutObject (spool-upload.ts). The
 *   limit is raised to MAX_BODY_MIB, S3's own (bodies are still held in memory by the emulator, as
 *   before).
 * Each fix checks that the code it changes is still there; if fauxqs changes, it is skipped.
 */
import { registerHooks } from "node:module";
import { readWholeFile, writeWholeFile } from "./large-file-io.ts";

const ROUTER = "/fauxqs/dist/s3/s3Router.js";
const FILE_STORE = "/fauxqs/dist/s3/fileS3Persistence.js";
const UNSAFE_IN_PATHS = String.raw`/[<>:"|?*\\%\x00-\x1f]/g`;
const RESTORE_OBJECT = "s3Store.restoreObject(bucketName, obj);";
const WRITE_DATA = "writeFileSync(dataPath, obj.body);";
const READ_DATA = "return readFileSync(dataPath);";
/** How the patched file store reaches large-file-io.ts (it cannot import a TypeScript file). */
const WHOLE_FILE = 'globalThis[Symbol.for("flussonic-backup.wholeFile")]';

/** Moves an object's files written under an older path encoding to the current one. */
const MOVE_TO_CASE_SAFE_PATH = `
function moveToCaseSafePathFix(persistence, objectsDir, metaPath, key) {
    const rel = encodeKeyToPath(key);
    const wanted = join(objectsDir, rel + ".meta.json");
    if (metaPath === wanted) return;
    const oldData = metaPath.slice(0, -".meta.json".length) + ".data";
    mkdirSync(dirname(wanted), { recursive: true });
    renameSync(oldData, join(objectsDir, rel + ".data"));
    renameSync(metaPath, wanted);
    persistence.cleanEmptyParents(dirname(metaPath), objectsDir);
}
`;
const COMPLETE = "/fauxqs/dist/s3/actions/completeMultipartUpload.js";
const APP = "/fauxqs/dist/app.js";
const BODY_LIMIT = "bodyLimit: 11 * 1_048_576,";
/** The largest request body the patched emulator takes (a part or a single PutObject), MiB. */
export const MAX_BODY_MIB = 5120;
const PERSISTENCE = "/fauxqs/dist/persistence.js";
const READY_NULLS = "this.stmts.updateMessageInflight.run(null, null, null, null, messageId);";
const READY_FIXED =
  'this.db.prepare("UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?").run(messageId);';
const DECODES_APOS = `.replaceAll("&apos;", "'")`;
/** Both bucket GET routes (`/{bucket}` and `/{bucket}/`) start with this test. */
const GET_LIFECYCLE = /if \("lifecycle" in getQuery\(request\)\) \{(\s+)getBucketLifecycleConfiguration\(/g;

const LIST_UPLOADS = `
function listMultipartUploadsFix(request, reply, store) {
    const bucket = request.params.bucket;
    const prefix = (request.query ?? {})["prefix"] ?? "";
    const esc = (v) => String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const ids = [...(store.multipartUploadsByBucket.get(bucket) ?? [])];
    const uploads = ids
        .map((id) => store.multipartUploads.get(id))
        .filter((u) => u && u.key.startsWith(prefix))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const xml = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        "<Bucket>" + esc(bucket) + "</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>",
        "<Prefix>" + esc(prefix) + "</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>",
        ...uploads.map((u) =>
            "<Upload><Key>" + esc(u.key) + "</Key><UploadId>" + esc(u.uploadId) + "</UploadId>" +
            "<Initiated>" + new Date(u.initiated).toISOString() + "</Initiated><StorageClass>STANDARD</StorageClass></Upload>"),
        "</ListMultipartUploadsResult>",
    ].join("");
    reply.header("content-type", "application/xml").send(xml);
}
`;

const OBJECT_LOCK_JS = String.raw`
function objectLockFix(app, store) {
    const locked = (store.objectLockBucketsFix ??= new Set());
    const held = (store.legalHoldsFix ??= new Set());
    const send = (reply, status, body) =>
        reply.status(status).header("content-type", "application/xml").send('<?xml version="1.0" encoding="UTF-8"?>' + body);
    const fail = (reply, status, code, message) =>
        send(reply, status, "<Error><Code>" + code + "</Code><Message>" + message + "</Message></Error>");
    const unescape = (s) => s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"').replaceAll("&apos;", "'").replaceAll("&#34;", '"').replaceAll("&#39;", "'").replaceAll("&amp;", "&");
    const NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
    app.addHook("preHandler", async (request, reply) => {
        const bucket = request.params?.bucket;
        if (!bucket) return;
        const key = request.params["*"] ?? "";
        const query = request.query ?? {};
        const method = request.method;
        if (!key) {
            if (method === "PUT" && String(request.headers["x-amz-bucket-object-lock-enabled"]).toLowerCase() === "true") {
                locked.add(bucket);
                return;
            }
            if (method === "GET" && "object-lock" in query) {
                if (!locked.has(bucket)) {
                    return fail(reply, 404, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket");
                }
                return send(reply, 200, "<ObjectLockConfiguration" + NS + "><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>");
            }
            if (method === "POST" && "delete" in query) {
                const body = Buffer.isBuffer(request.body) ? request.body.toString("utf8") : String(request.body ?? "");
                const keys = [...body.matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => unescape(m[1]));
                if (keys.some((k) => held.has(bucket + "/" + k))) {
                    return fail(reply, 403, "AccessDenied", "Access Denied because an object is protected by a legal hold");
                }
            }
            return;
        }
        const id = bucket + "/" + key;
        if ("legal-hold" in query) {
            if (!locked.has(bucket)) return fail(reply, 400, "InvalidRequest", "Bucket is missing Object Lock Configuration");
            if (!store.buckets.get(bucket)?.has(key)) return fail(reply, 404, "NoSuchKey", "The specified key does not exist.");
            if (method === "PUT") {
                const body = Buffer.isBuffer(request.body) ? request.body.toString("utf8") : String(request.body ?? "");
                if (/<Status>\s*ON\s*<\/Status>/.test(body)) held.add(id);
                else held.delete(id);
                return reply.status(200).send();
            }
            if (!held.has(id)) {
                return fail(reply, 404, "NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration");
            }
            return send(reply, 200, "<LegalHold" + NS + "><Status>ON</Status></LegalHold>");
        }
        const asked = request.headers["x-amz-object-lock-legal-hold"];
        if (method === "PUT" && asked !== undefined) {
            if (!locked.has(bucket)) return fail(reply, 400, "InvalidRequest", "Bucket is missing Object Lock Configuration");
            if (String(asked).toUpperCase() === "ON") held.add(id);
            return;
        }
        if (method === "DELETE" && !("uploadId" in query) && held.has(id)) {
            return fail(reply, 403, "AccessDenied", "Access Denied because object protected by object lock.");
        }
    });
}
`;

const REGISTER_ROUTES = "export function registerS3Routes(app, store) {";

const OBJECT_LOCK = `
${OBJECT_LOCK_JS}`;

let installed = false;

/** Installs the fixes; must run before fauxqs is imported. */
export function installEmulatorFixes(): void {
  if (installed) return;
  installed = true;
  (globalThis as Record<symbol, unknown>)[Symbol.for("flussonic-backup.wholeFile")] = {
    write: writeWholeFile,
    read: readWholeFile,
  };
  registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context);
      if (
        result.source === undefined ||
        !(
          url.endsWith(ROUTER) ||
          url.endsWith(APP) ||
          url.endsWith(COMPLETE) ||
          url.endsWith(FILE_STORE) ||
          url.endsWith(PERSISTENCE)
        )
      )
        return result;
      const text =
        typeof result.source === "string" ? result.source : new TextDecoder().decode(result.source);
      if (url.endsWith(APP)) {
        if (!text.includes(BODY_LIMIT)) return result;
        return { ...result, source: text.replace(BODY_LIMIT, `bodyLimit: ${MAX_BODY_MIB} * 1_048_576,`) };
      }
      if (url.endsWith(PERSISTENCE)) {
        if (!text.includes(READY_NULLS)) return result;
        return { ...result, source: text.replace(READY_NULLS, READY_FIXED) };
      }
      if (url.endsWith(FILE_STORE)) {
        let source = text;
        if (source.includes(UNSAFE_IN_PATHS) && source.includes(RESTORE_OBJECT)) {
          source =
            source
              .replace(UNSAFE_IN_PATHS, UNSAFE_IN_PATHS.replace("\\x1f]", "\\x1fA-Z]"))
              .replace(
                RESTORE_OBJECT,
                `moveToCaseSafePathFix(this, objectsDir, metaPath, meta.key);\n${RESTORE_OBJECT}`,
              ) + MOVE_TO_CASE_SAFE_PATH;
        }
        if (source.includes(WRITE_DATA) && source.includes(READ_DATA)) {
          source = source
            .replace(WRITE_DATA, `${WHOLE_FILE}.write(dataPath, obj.body);`)
            .replace(READ_DATA, `return ${WHOLE_FILE}.read(dataPath);`);
        }
        return source === text ? result : { ...result, source };
      }
      if (url.endsWith(COMPLETE)) {
        if (!text.includes(DECODES_APOS)) return result;
        const decoded = `${DECODES_APOS}.replaceAll("&#34;", '"').replaceAll("&#39;", "'")`;
        return { ...result, source: text.replace(DECODES_APOS, decoded) };
      }
      let patched = text;
      if (patched.search(GET_LIFECYCLE) >= 0 && !patched.includes("listMultipartUploadsFix")) {
        patched =
          patched.replace(
            GET_LIFECYCLE,
            (match, space: string) =>
              `if ("uploads" in getQuery(request)) {${space}listMultipartUploadsFix(request, reply, store);${space.slice(0, -4)}}${space.slice(0, -4)}else ${match}`,
          ) + LIST_UPLOADS;
      }
      if (patched.includes(REGISTER_ROUTES) && !patched.includes("objectLockFix")) {
        patched =
          patched.replace(REGISTER_ROUTES, `${REGISTER_ROUTES}\n    objectLockFix(app, store);`) +
          OBJECT_LOCK;
      }
      return patched === text ? result : { ...result, source: patched };
    },
  });
}
