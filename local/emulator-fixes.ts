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
          url.endsWith(COMPLETE) ||
          url.endsWith(FILE_STORE) ||
          url.endsWith(PERSISTENCE)
        )
      )
        return result;
      const text =
        typeof result.source === "string" ? result.source : new TextDecoder().decode(result.source);
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
      if (text.search(GET_LIFECYCLE) < 0 || text.includes("listMultipartUploadsFix")) return result;
      const patched = text.replace(
        GET_LIFECYCLE,
        (match, space: string) =>
          `if ("uploads" in getQuery(request)) {${space}listMultipartUploadsFix(request, reply, store);${space.slice(0, -4)}}${space.slice(0, -4)}else ${match}`,
      );
      return { ...result, source: patched + LIST_UPLOADS };
    },
  });
}
