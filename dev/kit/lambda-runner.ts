/**
 * One Lambda invocation in this process, the way the Node.js runtime makes it: reads the handler
 * from `_HANDLER` and the code directory from `LAMBDA_TASK_ROOT`, imports the module
 * (`<module>.js`, `.mjs` or `.cjs`, in the runtime's order), calls the exported function with the
 * event (JSON on stdin) and a Lambda context, and writes the outcome as JSON to the file named by
 * the first argument: `{ ok: true, result }` or `{ ok: false, errorType, errorMessage }`, with the
 * Node.js version that ran it (`node`).
 *
 * Usage: node lambda-runner.ts <result file> <deadline, epoch ms> <request id>
 * (the deadline and request id are what the runtime API hands the runtime with each event).
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { pathToFileURL } from "node:url";

const [resultFile, deadlineArg, requestId] = process.argv.slice(2);
if (!resultFile || !deadlineArg || !requestId) {
  process.stderr.write("usage: lambda-runner.ts <result file> <deadline ms> <request id>\n");
  process.exit(2);
}
const deadline = Number(deadlineArg);

function finish(outcome: object): never {
  writeFileSync(resultFile!, JSON.stringify({ ...outcome, node: process.version }));
  // Lambda freezes the sandbox once the handler answered: open sockets and timers do not matter.
  process.exit(0);
}

function failure(error: unknown) {
  return error instanceof Error
    ? { ok: false, errorType: error.name, errorMessage: error.message }
    : { ok: false, errorType: "Error", errorMessage: String(error) };
}

async function loadHandler(): Promise<(event: unknown, context: unknown) => unknown> {
  const taskRoot = process.env.LAMBDA_TASK_ROOT ?? "";
  const handler = process.env._HANDLER ?? "";
  // `dir/module.export[.nested]`: the module path is everything up to the first dot after the last '/'.
  const slash = handler.lastIndexOf("/") + 1;
  const [moduleName, ...path] = handler.slice(slash).split(".");
  if (!moduleName || path.length === 0) throw new Error(`malformed handler name: ${handler}`);
  const base = join(taskRoot, handler.slice(0, slash), moduleName);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) throw new Error(`Runtime.ImportModuleError: cannot find module ${moduleName} in ${taskRoot}`);
  let fn: unknown = await import(pathToFileURL(file).href);
  for (const key of path) fn = (fn as Record<string, unknown> | undefined)?.[key];
  if (typeof fn !== "function") throw new Error(`Runtime.HandlerNotFound: ${handler} is not a function`);
  return fn as (event: unknown, context: unknown) => unknown;
}

try {
  const event = JSON.parse(await text(process.stdin));
  const handler = await loadHandler();
  const env = process.env;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: `arn:aws:lambda:${env.AWS_REGION}:000000000000:function:${env.AWS_LAMBDA_FUNCTION_NAME}`,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {
      throw new Error("callback-style handlers are not supported by nodejs24.x");
    },
    fail: () => {
      throw new Error("callback-style handlers are not supported by nodejs24.x");
    },
    succeed: () => {
      throw new Error("callback-style handlers are not supported by nodejs24.x");
    },
  };
  const result = await handler(event, context);
  finish({ ok: true, result: result ?? null });
} catch (error) {
  finish(failure(error));
}
