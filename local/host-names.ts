/**
 * Which names a local HTTP server answers to, against DNS rebinding: a web page on another origin
 * whose name is made to resolve to 127.0.0.1 reaches a loopback server with its own name in `Host`.
 * Such a request is refused; IP literals, `localhost` (and `*.localhost`, which resolves to
 * loopback), this machine's name, the bound host and names the user added are answered.
 */
import { isIP } from "node:net";
import { hostname } from "node:os";

/** The host name of a `Host` header (no port, no brackets, lower case), or undefined when malformed. */
export function requestHostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  try {
    const name = new URL(`http://${header}/`).hostname.toLowerCase();
    return name.replace(/^\[|\]$/g, "") || undefined;
  } catch {
    return undefined;
  }
}

/** A check of `Host` headers: true when the server answers to that name. */
export function hostNameCheck(
  boundHost: string,
  allowed: readonly string[] = [],
): (header?: string) => boolean {
  const names = new Set(
    [boundHost, "localhost", hostname(), ...allowed].map((n) => n.toLowerCase().replace(/^\[|\]$/g, "")),
  );
  return (header) => {
    const host = requestHostName(header);
    return host !== undefined && (isIP(host) !== 0 || host.endsWith(".localhost") || names.has(host));
  };
}

/** Whether an address to listen on is loopback only (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}
