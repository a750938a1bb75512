import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, dependencyClosure, describe, known, num, stackPolicy, str, strs } from '../lib/policy';
import { EKS_CLUSTER, EKS_COMPONENT } from './eks';

const LOG_GROUP = 'aws:cloudwatch/logGroup:LogGroup';
const RDS_INSTANCE = 'aws:rds/instance:Instance';

/** Log groups AWS services create on their first write, unencrypted and kept forever, unless they already exist. */
function serviceLogGroups(r: PolicyResource): { names: string[]; problem?: string } {
  if (r.type === RDS_INSTANCE) {
    const exports = strs(known(() => r.props.enabledCloudwatchLogsExports));
    if (exports.length === 0) return { names: [] };
    const id = known(() => str(r.props.identifier));
    if (id === undefined) return { names: [], problem: `exports ${exports.join(', ')} logs but sets no identifier, so its log groups (/aws/rds/instance/<identifier>/…) cannot be declared before RDS creates them` };
    return { names: exports.map((e) => `/aws/rds/instance/${id}/${e}`) };
  }
  const logTypes = strs(known(() => r.props.enabledClusterLogTypes));
  if (logTypes.length === 0) return { names: [] };
  const name = known(() => str(r.props.name));
  if (name === undefined) return { names: [], problem: 'logs its control plane but sets no name, so /aws/eks/<name>/cluster cannot be declared before EKS creates it' };
  return { names: [`/aws/eks/${name}/cluster`] };
}

export const cloudwatchPolicies: PlatformPolicy[] = [
  stackPolicy({
    name: 'aws-cloudwatch-log-groups-encrypted-with-retention',
    description:
      'Every CloudWatch log group is encrypted with a KMS key (kmsKeyId) and has a retention (retentionInDays; unset keeps logs forever). Log groups AWS services create on their first write (RDS log exports, EKS control-plane logs) are declared by the program under the exact name the service uses, and the instance or cluster depends on them; otherwise the service creates them first, unencrypted and without retention.',
    control: { framework: 'AWS FSBP', id: 'CloudWatch.16', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html#cloudwatch-16' },
    concern: 'security',
    severity: 'medium',
    remediation:
      'Give every aws.cloudwatch.LogGroup kmsKeyId (a key whose policy lets logs.<region>.amazonaws.com use it) and retentionInDays; for RDS set identifier and declare /aws/rds/instance/<identifier>/<log>, for EKS /aws/eks/<cluster>/cluster, and pass them in dependsOn.',
    types: [LOG_GROUP, RDS_INSTANCE, EKS_COMPONENT, EKS_CLUSTER],
    validate: (resources, _args, report) => {
      const groups = resources.filter((r) => r.type === LOG_GROUP);
      for (const g of groups) {
        const missing = [
          ...(known(() => g.props.kmsKeyId) ? [] : ['kmsKeyId (it is encrypted with a key AWS owns, outside this account\'s audit)']),
          ...((known(() => num(g.props.retentionInDays)) ?? 0) > 0 ? [] : ['retentionInDays (its logs are kept forever)']),
        ];
        if (missing.length > 0) report(`${describe(g)} has no ${missing.join(' and no ')}.`, g.urn);
      }
      const byName = new Map(groups.flatMap((g) => {
        const name = known(() => str(g.props.name));
        return name ? [[name, g] as const] : [];
      }));
      for (const owner of resources.filter((r) => r.type === RDS_INSTANCE || r.type === EKS_COMPONENT || r.type === EKS_CLUSTER)) {
        const { names, problem } = serviceLogGroups(owner);
        if (problem) report(`${describe(owner)} ${problem}.`, owner.urn);
        for (const name of names) {
          const group = byName.get(name);
          if (!group) report(`${describe(owner)} writes logs to ${name}, which the program does not declare: the service would create it unencrypted, kept forever.`, owner.urn);
          else if (!dependencyClosure(owner).some((d) => d.urn === group.urn)) report(`${describe(owner)} does not depend on its log group ${name}, so it may create it first.`, owner.urn);
        }
      }
    },
  }),
];
