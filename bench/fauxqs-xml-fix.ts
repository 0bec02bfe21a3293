/**
 * A load-time fix of the embedded emulator (fauxqs 2.4.1) for the benchmark's rclone rows: its
 * CompleteMultipartUpload reads part ETags without decoding numeric character references, and Go's
 * XML encoder (rclone) writes the ETag's quotes as `&#34;`, so every rclone multipart upload fails
 * there with InvalidPart (see shared/design/architecture.md). The same one-line change as upstream
 * would make, applied as the module loads, so node_modules stays untouched. The AWS SDK for
 * JavaScript (our copier) is not affected either way.
 */
import { registerHooks } from "node:module";

const TARGET = "/fauxqs/dist/s3/actions/completeMultipartUpload.js";
const DECODES_APOS = `.replaceAll("&apos;", "'")`;

let installed = false;

/** Installs the fix; must run before fauxqs is imported. */
export function installFauxqsXmlFix(): void {
  if (installed) return;
  installed = true;
  registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context);
      if (!url.endsWith(TARGET) || result.source === undefined) return result;
      const text =
        typeof result.source === "string" ? result.source : new TextDecoder().decode(result.source);
      if (!text.includes(DECODES_APOS)) return result;
      return {
        ...result,
        source: text.replace(
          DECODES_APOS,
          `${DECODES_APOS}.replaceAll("&#34;", '"').replaceAll("&#39;", "'")`,
        ),
      };
    },
  });
}
