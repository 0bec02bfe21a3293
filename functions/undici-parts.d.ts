/**
 * The parts of undici that functions/shared/undici-pool.ts and the error checks import by their
 * files (see there why); their types are undici's own.
 */
declare module "undici/lib/dispatcher/pool.js" {
  import { Pool } from "undici";
  export default Pool;
}

declare module "undici/lib/dispatcher/dispatcher.js" {
  import { Dispatcher } from "undici";
  export default Dispatcher;
}

declare module "undici/lib/api/index.js" {
  const api: Record<string, unknown>;
  export default api;
}

declare module "undici/lib/core/errors.js" {
  import { errors } from "undici";
  export default errors;
}
