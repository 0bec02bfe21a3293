/**
 * undici's connection pool without the rest of undici. `import { Pool } from "undici"` loads all of
 * it (fetch, WebSocket, caches, mocks, proxies: 111 modules); the product needs the pool, its
 * request API and the error classes. This module does what undici's index does for them: the
 * request API (`request`, `stream`, ...) is put on every dispatcher.
 */
import api from "undici/lib/api/index.js";
import DispatcherBase from "undici/lib/dispatcher/dispatcher.js";
import Pool from "undici/lib/dispatcher/pool.js";

Object.assign(DispatcherBase.prototype, api);

export { Pool };
