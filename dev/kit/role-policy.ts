/**
 * The IAM policy of a synthesized function's role, evaluated the way AWS evaluates an identity
 * policy for one request: allowed when an Allow statement names the action and the resource (with
 * IAM's `*` and `?` wildcards) and no Deny statement does. The statements are read from the
 * template (the role's inline policies and every `AWS::IAM::Policy` attached to it), their
 * resources resolved against the emulator deployment, so a grant the stack lacks is a refusal here.
 * A statement with a condition counts only when the caller says the condition holds (`conditions`):
 * a condition this evaluator does not know never widens a grant.
 */
import type { Deployment, SynthesizedFunction, SynthesizedStack } from "./lambda-stack.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface PolicyStatement {
  effect: "Allow" | "Deny";
  actions: string[];
  /** Resource ARNs, resolved; `<unresolved ...>` for a reference the deployment cannot resolve. */
  resources: string[];
  condition: Record<string, Record<string, Json>> | undefined;
}

export interface RoleRequest {
  /** `s3:GetObject`, `sqs:SendMessage`, ... */
  action: string;
  /** The ARN of the object, bucket, queue or secret. */
  resource: string;
  /** Condition keys and their values in this request (e.g. `kms:ViaService`). */
  context?: Record<string, string>;
}

/** Matches an IAM pattern (`*`: any characters, `?`: one character). */
function matches(pattern: string, value: string, ignoreCase = false): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${re}$`, ignoreCase ? "is" : "s").test(value);
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The statements of the role the template gives `fn`. */
export function roleStatements(
  stack: SynthesizedStack,
  fn: SynthesizedFunction,
  deployment: Deployment,
  pseudo: { region: string; account: string },
): PolicyStatement[] {
  const role = (stack.resources[fn.logicalId]!.Properties!.Role as { "Fn::GetAtt": [string, string] })[
    "Fn::GetAtt"
  ][0];
  const resolve = (value: Json): string => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      if ("Ref" in value) {
        const ref = String(value.Ref);
        if (ref === "AWS::Partition") return "aws";
        if (ref === "AWS::Region") return pseudo.region;
        if (ref === "AWS::AccountId") return pseudo.account;
        if (ref === "AWS::URLSuffix") return "amazonaws.com";
      }
      if ("Fn::Join" in value) {
        const [separator, parts] = value["Fn::Join"] as [string, Json[]];
        return parts.map(resolve).join(separator);
      }
    }
    try {
      return deployment.resolve(value);
    } catch {
      return `<unresolved ${JSON.stringify(value)}>`;
    }
  };
  const documents: Json[] = [];
  const roleProps = stack.resources[role]!.Properties ?? {};
  for (const p of list(roleProps.Policies as { PolicyDocument: Json }[] | undefined)) {
    documents.push(p.PolicyDocument);
  }
  if (list(roleProps.ManagedPolicyArns as Json[] | undefined).length > 0) {
    throw new Error(`${role}: managed policies cannot be evaluated here; the stack uses none`);
  }
  for (const r of Object.values(stack.resources)) {
    if (r.Type !== "AWS::IAM::Policy") continue;
    const roles = list(r.Properties!.Roles as Json[] | undefined);
    if (roles.some((x) => (x as { Ref?: string }).Ref === role))
      documents.push(r.Properties!.PolicyDocument!);
  }
  return documents.flatMap((d) =>
    list((d as { Statement: Json[] }).Statement).map((st) => {
      const s = st as Record<string, Json>;
      if (s.NotAction || s.NotResource)
        throw new Error(`${role}: NotAction/NotResource is not evaluated here`);
      return {
        effect: s.Effect as "Allow" | "Deny",
        actions: list(s.Action as string | string[]),
        resources: list(s.Resource as Json).map(resolve),
        condition: s.Condition as PolicyStatement["condition"],
      };
    }),
  );
}

/** Whether a condition block holds for the request's context (StringEquals/StringLike only). */
function conditionHolds(condition: PolicyStatement["condition"], context: Record<string, string>): boolean {
  if (!condition) return true;
  return Object.entries(condition).every(([operator, keys]) =>
    Object.entries(keys).every(([key, expected]) => {
      const value = context[key];
      if (value === undefined) return false;
      const options = list(expected as string | string[]);
      if (operator === "StringEquals") return options.includes(value);
      if (operator === "StringLike") return options.some((o) => matches(o, value));
      return false;
    }),
  );
}

/** Whether the statements allow the request: an Allow matches and no Deny does. */
export function allows(statements: PolicyStatement[], request: RoleRequest): boolean {
  const applies = (s: PolicyStatement) =>
    s.actions.some((a) => matches(a, request.action, true)) &&
    s.resources.some((r) => matches(r, request.resource)) &&
    conditionHolds(s.condition, request.context ?? {});
  if (statements.some((s) => s.effect === "Deny" && applies(s))) return false;
  return statements.some((s) => s.effect === "Allow" && applies(s));
}
