/**
 * A small HTTP/1.1 client for short request/response exchanges with one origin over keep-alive
 * connections (the lean S3 path, lean-s3.ts): a request is one write of head and body, a response
 * is parsed from the socket's data (Content-Length, chunked, or delimited by the connection's end).
 * It costs less than half the CPU of node:http per exchange (no ClientRequest, IncomingMessage or
 * stream objects per request), which is most of what a planning run over many streams spends.
 *
 * One request per connection at a time (no pipelining); idle connections are unreferenced (they
 * never keep a process alive) and dropped when the server closes them. A connection that fails is
 * never reused; the caller decides whether to try again (lean-s3.ts does, as the SDK would).
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

export interface Http1Response {
  status: number;
  /** Lower-case names; a repeated header keeps its last value. */
  headers: Map<string, string>;
  body: Buffer;
}

export interface Http1Options {
  /** Milliseconds to wait for a new connection. */
  connectTimeoutMs: number;
  /** Milliseconds a socket may stay silent during an exchange (0: no limit). */
  idleTimeoutMs: number;
}

/** A network failure of one exchange, with a Node-style code (ECONNRESET, ETIMEDOUT...). */
export class Http1Error extends Error {
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    if (code === "ETIMEDOUT") this.name = "TimeoutError";
  }
}

export class Http1Connections {
  readonly #url: URL;
  readonly #options: Http1Options;
  readonly #idle: Socket[] = [];
  #closed = false;

  constructor(origin: URL, options: Http1Options) {
    if (origin.protocol !== "http:" && origin.protocol !== "https:") {
      throw new Error(`unsupported protocol ${origin.protocol}`);
    }
    this.#url = origin;
    this.#options = options;
  }

  /** Closes every idle connection; requests after this fail. */
  close(): void {
    this.#closed = true;
    for (const s of this.#idle.splice(0)) s.destroy();
  }

  /**
   * One exchange. `head` is the request line and header lines without the final empty line, e.g.
   * "GET /k HTTP/1.1\r\nhost: h"; `body` is sent with it in one write.
   */
  async request(head: string, body?: string): Promise<Http1Response> {
    if (this.#closed) throw new Http1Error("connections closed", "ECONNRESET");
    const socket = this.#idle.pop() ?? (await this.#connect());
    return await new Promise<Http1Response>((resolve, reject) => {
      const parser = new ResponseParser();
      let settled = false;
      const finish = (error: Error | undefined, res?: Http1Response, reusable = false) => {
        if (settled) return;
        settled = true;
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        socket.off("end", onEnd);
        socket.off("timeout", onTimeout);
        socket.setTimeout(0);
        if (error) {
          socket.destroy();
          reject(error);
          return;
        }
        if (reusable && !this.#closed && !socket.destroyed) this.#park(socket);
        else socket.destroy();
        resolve(res!);
      };
      const onData = (chunk: Buffer) => {
        let done: ReturnType<ResponseParser["push"]>;
        try {
          done = parser.push(chunk);
        } catch (error) {
          finish(new Http1Error(`malformed HTTP response: ${(error as Error).message}`, "EPROTO"));
          return;
        }
        if (done) finish(undefined, done.response, done.keepAlive);
      };
      const onEnd = () => {
        const done = parser.end();
        if (done) finish(undefined, done, false);
        else finish(new Http1Error("connection closed before the response ended", "ECONNRESET"));
      };
      const onClose = () => onEnd();
      const onError = (error: NodeJS.ErrnoException) =>
        finish(new Http1Error(error.message, error.code ?? "ECONNRESET", { cause: error }));
      const onTimeout = () =>
        finish(new Http1Error(`socket idle for ${this.#options.idleTimeoutMs} ms`, "ETIMEDOUT"));
      socket.on("data", onData);
      socket.on("error", onError);
      socket.on("end", onEnd);
      socket.on("close", onClose);
      socket.on("timeout", onTimeout);
      if (this.#options.idleTimeoutMs > 0) socket.setTimeout(this.#options.idleTimeoutMs);
      socket.ref();
      socket.write(body === undefined || body === "" ? `${head}\r\n\r\n` : `${head}\r\n\r\n${body}`);
    });
  }

  #park(socket: Socket): void {
    socket.unref();
    this.#idle.push(socket);
  }

  #connect(): Promise<Socket> {
    const url = this.#url;
    const https = url.protocol === "https:";
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port || (https ? 443 : 80));
    return new Promise<Socket>((resolve, reject) => {
      const socket: Socket = https
        ? tlsConnect({
            host,
            port,
            ALPNProtocols: ["http/1.1"],
            ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
          })
        : netConnect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Http1Error(`no connection within ${this.#options.connectTimeoutMs} ms`, "ETIMEDOUT"));
      }, this.#options.connectTimeoutMs);
      const ready = () => {
        clearTimeout(timer);
        socket.off("error", failed);
        // An idle connection the server closes is dropped from the pool.
        socket.on("close", () => {
          const i = this.#idle.indexOf(socket);
          if (i >= 0) this.#idle.splice(i, 1);
        });
        socket.on("error", () => undefined);
        resolve(socket);
      };
      const failed = (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Http1Error(error.message, error.code ?? "ECONNREFUSED", { cause: error }));
      };
      socket.once(https ? "secureConnect" : "connect", ready);
      socket.once("error", failed);
    });
  }
}

/**
 * Parses one response from the bytes of a connection. `push` returns the response once complete
 * (and whether the connection may carry another); `end` is for a response delimited by the end of
 * the connection. Informational (1xx) heads are skipped.
 */
export class ResponseParser {
  #buf: Buffer = Buffer.alloc(0);
  #status = 0;
  #headers: Map<string, string> | undefined;
  #keepAlive = true;
  /** Body framing once the head is read. */
  #length: number | "chunked" | "close" = 0;
  #chunks: Buffer[] = [];
  /** Chunked: bytes of the current chunk still to read (-1: a size line is next; -2: trailers). */
  #chunkLeft = -1;

  push(data: Buffer): { response: Http1Response; keepAlive: boolean } | undefined {
    this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
    for (;;) {
      if (!this.#headers) {
        const end = this.#buf.indexOf("\r\n\r\n");
        if (end < 0) {
          if (this.#buf.length > 64 * 1024) throw new Error("response head over 64 KiB");
          return undefined;
        }
        this.#readHead(this.#buf.subarray(0, end).toString("latin1"));
        this.#buf = this.#buf.subarray(end + 4);
        if (this.#status >= 100 && this.#status < 200) {
          this.#headers = undefined;
          continue;
        }
      }
      if (this.#length === "close") {
        if (this.#buf.length > 0) this.#chunks.push(this.#buf);
        this.#buf = Buffer.alloc(0);
        return undefined;
      }
      if (typeof this.#length === "number") {
        if (this.#buf.length < this.#length) return undefined;
        const body = this.#buf.subarray(0, this.#length);
        if (this.#buf.length > this.#length) this.#keepAlive = false; // bytes we did not ask for
        return { response: this.#response(body), keepAlive: this.#keepAlive };
      }
      const done = this.#readChunks();
      if (done) return { response: this.#response(Buffer.concat(this.#chunks)), keepAlive: this.#keepAlive };
      return undefined;
    }
  }

  /** The connection ended: the response when it was delimited by that end, else undefined. */
  end(): Http1Response | undefined {
    if (!this.#headers || this.#length !== "close") return undefined;
    return this.#response(Buffer.concat(this.#chunks));
  }

  #readHead(head: string): void {
    const lines = head.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? "");
    if (!m) throw new Error(`bad status line ${JSON.stringify((lines[0] ?? "").slice(0, 40))}`);
    this.#status = Number(m[2]);
    const headers = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.#headers = headers;
    const connection = (headers.get("connection") ?? "").toLowerCase();
    this.#keepAlive = m[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    const te = (headers.get("transfer-encoding") ?? "").toLowerCase();
    const cl = headers.get("content-length");
    if (this.#status === 204 || this.#status === 304 || (this.#status >= 100 && this.#status < 200)) {
      this.#length = 0;
    } else if (te.includes("chunked")) {
      this.#length = "chunked";
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new Error(`bad content-length ${JSON.stringify(cl)}`);
      this.#length = Number(cl);
    } else {
      this.#length = "close";
      this.#keepAlive = false;
    }
  }

  /** Reads chunks from the buffer; true once the last chunk and the trailers are in. */
  #readChunks(): boolean {
    for (;;) {
      if (this.#chunkLeft === -1 || this.#chunkLeft === -2) {
        const eol = this.#buf.indexOf("\r\n");
        if (eol < 0) return false;
        const line = this.#buf.subarray(0, eol).toString("latin1");
        this.#buf = this.#buf.subarray(eol + 2);
        if (this.#chunkLeft === -2) {
          if (line === "") return true; // end of trailers
          continue;
        }
        const size = Number.parseInt(line.split(";")[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0) throw new Error(`bad chunk size ${JSON.stringify(line)}`);
        this.#chunkLeft = size === 0 ? -2 : size;
        continue;
      }
      // Chunk data, then its CRLF.
      if (this.#buf.length < this.#chunkLeft + 2) return false;
      this.#chunks.push(this.#buf.subarray(0, this.#chunkLeft));
      this.#buf = this.#buf.subarray(this.#chunkLeft + 2);
      this.#chunkLeft = -1;
    }
  }

  #response(body: Buffer): Http1Response {
    return { status: this.#status, headers: this.#headers ?? new Map(), body };
  }
}
