import { type PlatformPolicy, type Props, arr, at, describe, obj, oneOrMany, policyDocument, resourcePolicy, statements, str } from '../lib/policy';

const DOCUMENT_TYPES: Record<string, (props: Props) => unknown[]> = {
  'aws:iam/policy:Policy': (p) => [p.policy],
  'aws:iam/rolePolicy:RolePolicy': (p) => [p.policy],
  'aws:iam/userPolicy:UserPolicy': (p) => [p.policy],
  'aws:iam/groupPolicy:GroupPolicy': (p) => [p.policy],
  'aws:iam/role:Role': (p) => arr(p.inlinePolicies).map((i) => at(i, 'policy')),
};
const ATTACHMENT_TYPES = [
  'aws:iam/rolePolicyAttachment:RolePolicyAttachment',
  'aws:iam/userPolicyAttachment:UserPolicyAttachment',
  'aws:iam/groupPolicyAttachment:GroupPolicyAttachment',
  'aws:iam/policyAttachment:PolicyAttachment',
];

/** AWS managed policies that grant `"Action": "*"` or its equivalent. */
const ADMIN_MANAGED_POLICIES = ['AdministratorAccess', 'PowerUserAccess', 'IAMFullAccess'];

/**
 * Verbs of the IAM "List" and "Read" access levels. An action whose name starts with one of
 * them reads; everything else (Put, Create, Delete, Attach, Pass, Update, Tag, …) writes.
 * A wildcard such as `s3:*` or `s3:Put*` counts as write.
 */
const READ_VERBS = ['Get', 'List', 'Describe', 'View', 'BatchGet', 'Search', 'Lookup', 'Select', 'Query', 'Scan', 'Head', 'Filter', 'Check', 'Validate'];

export function isWriteAction(action: string): boolean {
  if (action === '*') return true;
  const name = action.split(':')[1] ?? action;
  if (name.includes('*')) {
    const prefix = name.slice(0, name.indexOf('*'));
    return !READ_VERBS.some((v) => prefix.startsWith(v));
  }
  return !READ_VERBS.some((v) => name.startsWith(v) && (name.length === v.length || /[A-Z]/.test(name.charAt(v.length))));
}

/** What is wrong with one statement, or undefined. */
function statementProblem(s: Props): string | undefined {
  if (s.Effect !== 'Allow') return undefined;
  if (s.NotAction !== undefined) return 'allows NotAction (everything except a list)';
  const actions = oneOrMany(s.Action);
  if (actions.includes('*')) return 'allows "Action": "*"';
  const resources = oneOrMany(s.Resource);
  const anyResource = resources.includes('*') || s.NotResource !== undefined;
  // Create-style actions have no resource ARN to name yet; AWS scopes them with conditions
  // (request tags, service names), so a conditioned statement is treated as scoped.
  if (anyResource && s.Condition === undefined) {
    const writes = actions.filter(isWriteAction);
    if (writes.length > 0) return `allows write actions (${writes.slice(0, 5).join(', ')}${writes.length > 5 ? ', …' : ''}) on "Resource": "*" without a Condition`;
  }
  return undefined;
}

export const iamPolicies: PlatformPolicy[] = [
  resourcePolicy({
    name: 'aws-iam-no-wildcard-admin-or-write',
    description:
      'No IAM policy (managed, inline, or on a role) allows "Action": "*" or NotAction, nor write actions on "Resource": "*" without a Condition; no AdministratorAccess, PowerUserAccess or IAMFullAccess attachment. Read-only actions (Get*, List*, Describe*) may use "*". A document that cannot be parsed fails.',
    control: { framework: 'AWS FSBP', id: 'IAM.1 / IAM.21', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/iam-controls.html#iam-21' },
    concern: 'security',
    severity: 'critical',
    remediation: 'Name the actions the workload calls and the ARNs it touches (bucket/prefix/*, the queue, the key); use a Condition (aws:RequestTag, aws:ResourceTag) where the ARN cannot be known.',
    types: [...Object.keys(DOCUMENT_TYPES), ...ATTACHMENT_TYPES],
    validate: (props, args, report) => {
      if (ATTACHMENT_TYPES.includes(args.type)) {
        const arn = str(props.policyArn) ?? '';
        const admin = ADMIN_MANAGED_POLICIES.find((p) => arn.endsWith(`:policy/${p}`));
        if (admin) report(`${describe(args)} attaches the AWS managed ${admin}.`);
        return;
      }
      const read = DOCUMENT_TYPES[args.type];
      for (const raw of read ? read(props) : []) {
        if (raw === undefined || raw === null || raw === '') continue;
        const doc = policyDocument(raw);
        if (doc === undefined) {
          report(`${describe(args)} has a policy document that is not valid JSON.`);
          continue;
        }
        statements(doc).forEach((s, i) => {
          const problem = statementProblem(s);
          if (problem) report(`${describe(args)} statement ${str(s.Sid) ?? i} ${problem}.`);
        });
      }
    },
  }),
  resourcePolicy({
    name: 'aws-iam-irsa-trust-conditions',
    description:
      'A role trusting a Kubernetes OIDC provider (IRSA: sts:AssumeRoleWithWebIdentity from an oidc-provider principal) pins both token claims with StringEquals: `<issuer>:sub` to one service account (system:serviceaccount:<namespace>:<name>, no wildcard) and `<issuer>:aud` to sts.amazonaws.com. Without `:sub` every pod in the cluster can assume the role; without `:aud` a token minted for another audience can.',
    control: { framework: 'AWS EKS Best Practices', id: 'iam-irsa-scope', url: 'https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html#_scope_the_iam_role_trust_policy_for_irsa_roles_to_the_service_account_name_namespace_and_cluster' },
    concern: 'security',
    severity: 'critical',
    remediation: 'Condition: { StringEquals: { "<issuer>:sub": "system:serviceaccount:<ns>:<sa>", "<issuer>:aud": "sts.amazonaws.com" } }, with <issuer> the provider URL without https://.',
    types: ['aws:iam/role:Role'],
    validate: (props, args, report) => {
      const raw = props.assumeRolePolicy;
      if (typeof raw !== 'string' && obj(raw) === undefined) return;
      statements(policyDocument(raw)).forEach((s, i) => {
        if (s.Effect !== 'Allow' || !oneOrMany(s.Action).includes('sts:AssumeRoleWithWebIdentity')) return;
        const federated = oneOrMany(at(s.Principal, 'Federated'));
        const issuers = federated.flatMap((p) => {
          const m = /:oidc-provider\/(.+)$/.exec(p);
          return m?.[1] ? [m[1]] : [];
        });
        if (issuers.length === 0) return;
        const where = `${describe(args)} statement ${str(s.Sid) ?? i}`;
        const equals = obj(at(s.Condition, 'StringEquals')) ?? {};
        for (const issuer of issuers) {
          const sub = oneOrMany(equals[`${issuer}:sub`]);
          const aud = oneOrMany(equals[`${issuer}:aud`]);
          if (sub.length === 0) report(`${where} lets any service account of ${issuer} assume the role: pin ${issuer}:sub with StringEquals.`);
          else if (sub.some((v) => !/^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(v))) report(`${where} pins ${issuer}:sub to ${sub.join(', ')}, not to one service account.`);
          if (aud.length !== 1 || aud[0] !== 'sts.amazonaws.com') report(`${where} must pin ${issuer}:aud to sts.amazonaws.com with StringEquals.`);
        }
      });
    },
  }),
];
