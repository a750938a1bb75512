import {
  type PlatformPolicy,
  arr,
  describe,
  known,
  num,
  obj,
  referencedBy,
  resourcePolicy,
  stackPolicy,
  str,
} from '../lib/policy';

const INSTANCE = 'aws:rds/instance:Instance';
const CLUSTER = 'aws:rds/cluster:Cluster';
const CLUSTER_INSTANCE = 'aws:rds/clusterInstance:ClusterInstance';
const PARAMETER_GROUP = 'aws:rds/parameterGroup:ParameterGroup';

const fsbp = (id: string) => ({ framework: 'AWS FSBP', id, url: `https://docs.aws.amazon.com/securityhub/latest/userguide/rds-controls.html#${id.toLowerCase().replace('.', '-')}` });

/** The parameter that makes each engine refuse clear-text connections. */
const TLS_PARAMETER: Record<string, { name: string; on: readonly string[] }> = {
  postgres: { name: 'rds.force_ssl', on: ['1', 'true', 'on'] },
  mysql: { name: 'require_secure_transport', on: ['1', 'ON', 'on', 'true'] },
  mariadb: { name: 'require_secure_transport', on: ['1', 'ON', 'on', 'true'] },
};

function engineFamily(engine: string | undefined): string | undefined {
  if (engine === undefined) return undefined;
  if (engine.includes('postgres')) return 'postgres';
  if (engine.includes('mysql')) return 'mysql';
  return engine === 'mariadb' ? 'mariadb' : undefined;
}

export const rdsPolicies: PlatformPolicy[] = [
  resourcePolicy({
    name: 'aws-rds-storage-encrypted',
    description: 'RDS instances and clusters set storageEncrypted: true (the provider default is false, so unset is unencrypted); a customer managed kmsKeyId is preferred.',
    control: fsbp('RDS.3'),
    concern: 'security',
    severity: 'high',
    remediation: 'Set storageEncrypted: true and kmsKeyId to the database KMS key. Encryption cannot be switched on in place: plan a snapshot-restore.',
    types: [INSTANCE, CLUSTER],
    validate: (props, args, report) => {
      if (props.replicateSourceDb !== undefined) return; // a replica inherits the source's encryption
      if (props.storageEncrypted !== true) report(`${describe(args)} must set storageEncrypted: true.`);
    },
  }),
  resourcePolicy({
    name: 'aws-rds-instance-disallow-public-access',
    description: 'RDS instances are not publicly accessible: publiclyAccessible must not be true (unset is the provider default, false). Reach the database from inside the VPC only.',
    control: fsbp('RDS.2'),
    concern: 'security',
    severity: 'critical',
    remediation: 'Set publiclyAccessible: false and place the instance in private subnets through its DB subnet group.',
    types: [INSTANCE, CLUSTER_INSTANCE],
    validate: (props, args, report) => {
      if (props.publiclyAccessible === true) report(`${describe(args)} is publicly accessible.`);
    },
  }),
  resourcePolicy<{ minimumDays: number }>({
    name: 'aws-rds-backup-retention',
    description:
      'RDS instances and clusters keep automated backups (and point-in-time recovery) for at least `minimumDays` days (7). Unset is the provider default of 1 day, which fails. Required in prod, advised in dev.',
    control: fsbp('RDS.11'),
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Set backupRetentionPeriod to 7 or more.',
    types: [INSTANCE, CLUSTER],
    config: {
      schema: { properties: { minimumDays: { type: 'integer', minimum: 1, maximum: 35, default: 7 } } },
      perStack: { dev: { minimumDays: 7 }, prod: { minimumDays: 7 } },
    },
    validate: (props, args, report) => {
      if (props.replicateSourceDb !== undefined) return;
      const days = num(props.backupRetentionPeriod);
      if (days === undefined || days < args.config.minimumDays) {
        report(`${describe(args)} keeps backups for ${days ?? 'the default 1'} day(s); at least ${args.config.minimumDays} required.`);
      }
    },
  }),
  resourcePolicy({
    name: 'aws-rds-deletion-protection',
    description: 'RDS instances and clusters set deletionProtection: true (the provider default is false), so neither a console click nor a replacing `pulumi up` drops the database. Required in prod, advised in dev.',
    control: fsbp('RDS.8'),
    concern: 'resilience',
    severity: 'high',
    remediation: 'Set deletionProtection: true (and skipFinalSnapshot: false with a finalSnapshotIdentifier).',
    types: [INSTANCE, CLUSTER],
    validate: (props, args, report) => {
      if (props.deletionProtection !== true) report(`${describe(args)} must set deletionProtection: true.`);
    },
  }),
  resourcePolicy({
    name: 'aws-rds-instance-multi-az',
    description: 'RDS instances run with a synchronous standby in a second availability zone (multiAz: true; the provider default is false). Required in prod, advised in dev.',
    control: fsbp('RDS.5'),
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Set multiAz: true.',
    types: [INSTANCE],
    validate: (props, args, report) => {
      if (props.replicateSourceDb !== undefined) return;
      if (props.multiAz !== true) report(`${describe(args)} is not Multi-AZ.`);
    },
  }),
  resourcePolicy({
    name: 'aws-rds-final-snapshot',
    description:
      'RDS instances and clusters take a final snapshot when deleted: skipFinalSnapshot is false and a finalSnapshotIdentifier is set (with neither, a delete keeps nothing). Required in prod, advised in dev.',
    control: { framework: 'AWS FSBP', id: 'RDS.8 (companion)', url: 'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_DeleteInstance.html' },
    concern: 'resilience',
    severity: 'high',
    remediation: 'Set skipFinalSnapshot: false and finalSnapshotIdentifier to a name unique in the account and region (e.g. <project>-<stack>-<db>-final).',
    types: [INSTANCE, CLUSTER],
    validate: (props, args, report) => {
      if (props.replicateSourceDb !== undefined) return;
      if (props.skipFinalSnapshot === true) report(`${describe(args)} skips the final snapshot on delete.`);
      else if (str(props.finalSnapshotIdentifier) === undefined) report(`${describe(args)} has no finalSnapshotIdentifier, so a delete cannot take a final snapshot.`);
    },
  }),
  resourcePolicy({
    name: 'aws-rds-engine-version-major-only',
    description:
      'An RDS instance or cluster whose minor versions RDS upgrades itself (autoMinorVersionUpgrade, on by default) pins only the major engine version ("16", not "16.8"): with a pinned minor, the first `up` after an automatic upgrade asks RDS for a downgrade, which fails.',
    control: { framework: 'Platform Kit', id: 'upgrade-without-drift', url: 'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Upgrading.html#USER_UpgradeDBInstance.Upgrading.AutoMinorVersionUpgrades' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Set engineVersion to the major version only (e.g. "16"); change it deliberately, with allowMajorVersionUpgrade, for a major upgrade.',
    types: [INSTANCE, CLUSTER],
    validate: (props, args, report) => {
      const version = str(props.engineVersion);
      if (version === undefined || props.autoMinorVersionUpgrade === false) return;
      const engine = str(props.engine) ?? '';
      // MySQL-family majors carry a dot ("8.0"); anything past it pins a minor.
      const majorParts = /mysql|mariadb/.test(engine) ? 2 : 1;
      if (version.split('.').length > majorParts) report(`${describe(args)} pins engineVersion ${version} while RDS upgrades minor versions itself; pin ${version.split('.').slice(0, majorParts).join('.')} only.`);
    },
  }),
  stackPolicy({
    name: 'aws-rds-instance-tls-enforced',
    description:
      'Every PostgreSQL, MySQL or MariaDB RDS instance uses a parameter group created in the program that refuses clear-text connections (rds.force_ssl = 1, or require_secure_transport = 1). A default parameter group does not count: its value depends on the engine version.',
    control: { framework: 'AWS Well-Architected', id: 'SEC09-BP02', url: 'https://docs.aws.amazon.com/wellarchitected/latest/security-pillar/sec_protect_data_transit_encrypt.html' },
    concern: 'security',
    severity: 'high',
    remediation: 'Create an aws.rds.ParameterGroup for the engine family with { name: "rds.force_ssl", value: "1" } and pass its name as parameterGroupName.',
    types: [INSTANCE, PARAMETER_GROUP],
    validate: (resources, _args, report) => {
      for (const db of resources.filter((r) => r.type === INSTANCE)) {
        const family = engineFamily(known(() => str(db.props.engine)));
        if (!family) continue;
        const tls = TLS_PARAMETER[family];
        if (!tls) continue;
        const groups = referencedBy(db, 'parameterGroupName').filter((r) => r.type === PARAMETER_GROUP);
        if (groups.length === 0) {
          report(`${describe(db)} does not use a parameter group from this program, so ${tls.name} is not enforced.`, db.urn);
          continue;
        }
        for (const group of groups) {
          const param = arr(known(() => group.props.parameters)).map(obj).find((p) => p?.name === tls.name);
          const value = param ? String(param.value) : undefined;
          if (value === undefined || !tls.on.includes(value)) {
            report(`${describe(group)} used by ${describe(db)} sets ${tls.name} = ${value ?? 'unset'}; it must be 1.`, group.urn);
          }
        }
      }
    },
  }),
];
