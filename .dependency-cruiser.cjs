/**
 * The import rule of issue 21: one direction for imports.
 *
 *   functions/domain  <-  functions/shared, functions/config  <-  functions/{source,store,queue}
 *     <-  functions/{planner,copier,playback}, ops  <-  functions/lambda, local, cli
 *
 * A folder may import its own layer and the layers to its left, never one to its right; the
 * simulator uses the domain only; infra reads the config and the limits it needs; nothing in the
 * product imports dev/ (bench, soak, test kit) or test/. `npm test` runs it (`npm run deps`).
 */
const OURS_NOT = (allowed) => `^(?!${allowed.join("|")})(functions|ops|local|cli|simulator|dev|test|infra)/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "product-imports-dev-or-test",
      comment: "dev/ (bench, soak, test kit) and test/ are never part of the product.",
      severity: "error",
      from: { path: "^(functions|ops|local|cli|simulator|infra)/" },
      to: { path: "^(dev|test)/" },
    },
    {
      name: "domain-is-pure",
      comment: "functions/domain/ imports nothing of ours outside itself.",
      severity: "error",
      from: { path: "^functions/domain/" },
      to: { path: OURS_NOT(["functions/domain/"]) },
    },
    {
      name: "shared-imports-domain-only",
      severity: "error",
      from: { path: "^functions/shared/" },
      to: { path: OURS_NOT(["functions/shared/", "functions/domain/"]) },
    },
    {
      name: "config-imports-domain-and-shared",
      severity: "error",
      from: { path: "^functions/config/" },
      to: { path: OURS_NOT(["functions/config/", "functions/shared/", "functions/domain/"]) },
    },
    {
      name: "adapters-import-below-them",
      comment: "source, store and queue (the adapters) import domain, shared, config and each other.",
      severity: "error",
      from: { path: "^functions/(source|store|queue)/" },
      to: { path: OURS_NOT(["functions/(domain|shared|config|source|store|queue)/"]) },
    },
    {
      name: "components-import-below-them",
      comment: "planner, copier, playback and ops never import an entry point (lambda, local, cli).",
      severity: "error",
      from: { path: "^(functions/(planner|copier|playback)|ops)/" },
      to: {
        path: OURS_NOT([
          "functions/(domain|shared|config|source|store|queue|planner|copier|playback)/",
          "ops/",
        ]),
      },
    },
    {
      name: "lambda-bundles-no-local-code",
      comment: "A Lambda bundle pulls no one-machine, CLI or simulator code.",
      severity: "error",
      from: { path: "^functions/lambda/" },
      to: { path: "^(local|cli|simulator|ops)/" },
    },
    {
      name: "local-never-imports-cli",
      severity: "error",
      from: { path: "^local/" },
      to: { path: "^(cli|simulator|functions/lambda)/" },
    },
    {
      name: "simulator-uses-the-domain-only",
      severity: "error",
      from: { path: "^simulator/" },
      to: { path: OURS_NOT(["simulator/", "functions/domain/"]) },
    },
    {
      name: "infra-reads-config-and-limits-only",
      comment: "The stack reads the config, the domain's names and keys, and the limits it needs.",
      severity: "error",
      from: { path: "^infra/" },
      to: { path: "^(functions/(source|store|queue|planner|copier|lambda)|ops|local|cli)/" },
    },
    {
      name: "no-circular",
      severity: "error",
      from: { path: "^(functions|ops|local|cli|simulator)/" },
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(node_modules|cdk\\.out|reports|\\.stryker-tmp)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
    },
  },
};
