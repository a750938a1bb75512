/**
 * For every policy of the pack: resources that break it (with the message expected) and
 * resources that satisfy it. rules.test.ts runs each pair and fails if a policy has none.
 */
import type { PolicyStack } from '../../policies/catalog';
import type { EvaluableResource } from '../../tools/offline/evaluate';
import { craft } from './helpers';

export interface Scenario {
  /** What the scenario shows, for the test name. */
  what: string;
  resources: () => EvaluableResource[];
  stack?: PolicyStack;
}
export interface BadScenario extends Scenario {
  message: RegExp;
}
export interface Case {
  bad: BadScenario[];
  good: Scenario[];
}

// ---------------------------------------------------------------- S3
const BUCKET = 'aws:s3/bucket:Bucket';
const bucket = (name = 'uploads', inputs: Record<string, unknown> = {}) => craft(BUCKET, name, inputs);
const withCompanion = (type: string, inputs: Record<string, unknown>) => () => {
  const b = bucket();
  return [b, craft(type, `${b.name}-companion`, inputs, { via: { bucket: [b] } })];
};
const PAB = 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock';
const allBlocked = { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true };
const tlsOnly = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Sid: 'DenyInsecureTransport', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: ['arn:aws:s3:::uploads', 'arn:aws:s3:::uploads/*'], Condition: { Bool: { 'aws:SecureTransport': 'false' } } }],
});

// ---------------------------------------------------------------- RDS and ElastiCache
const RDS = 'aws:rds/instance:Instance';
const goodRds = { engine: 'postgres', instanceClass: 'db.t4g.medium', storageEncrypted: true, publiclyAccessible: false, backupRetentionPeriod: 7, deletionProtection: true, multiAz: true };
const RDS_PG = 'aws:rds/parameterGroup:ParameterGroup';
const REDIS = 'aws:elasticache/replicationGroup:ReplicationGroup';
const REDIS_PG = 'aws:elasticache/parameterGroup:ParameterGroup';
const goodRedis = { engine: 'redis', nodeType: 'cache.t4g.small', atRestEncryptionEnabled: true, transitEncryptionEnabled: true, authToken: 's3cr3t-token', automaticFailoverEnabled: true, multiAzEnabled: true, numCacheClusters: 2 };
const withParameterGroup = (dbType: string, pgType: string, dbInputs: Record<string, unknown>, parameters: { name: string; value: string }[]) => () => {
  const pg = craft(pgType, 'params', { family: 'x', parameters });
  return [pg, craft(dbType, 'db', dbInputs, { via: { parameterGroupName: [pg] } })];
};

// ---------------------------------------------------------------- EKS
const EKS = 'eks:index:Cluster';
const EKS_RAW = 'aws:eks/cluster:Cluster';
const MNG = 'eks:index:ManagedNodeGroup';
const privateCluster = { endpointPrivateAccess: true, endpointPublicAccess: false, skipDefaultNodeGroup: true, publicSubnetIds: ['subnet-pub-a', 'subnet-pub-b'], privateSubnetIds: ['subnet-priv-a', 'subnet-priv-b'] };

// ---------------------------------------------------------------- Kubernetes
const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const hardenedContainer = {
  name: 'api',
  image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/platform-kit:3f9c2ab',
  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
  resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
  readinessProbe: { httpGet: { path: '/readyz', port: 8080 } },
  livenessProbe: { httpGet: { path: '/healthz', port: 8080 } },
};
const deployment = (container: Record<string, unknown>, extra: { namespace?: string; pod?: Record<string, unknown>; replicas?: number } = {}) => ({
  metadata: { name: 'api', namespace: extra.namespace ?? 'platform' },
  spec: {
    replicas: extra.replicas ?? 1,
    selector: { matchLabels: { app: 'api' } },
    template: {
      metadata: { labels: { app: 'api' } },
      spec: { securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }, containers: [container], ...extra.pod },
    },
  },
});
const HPA = 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler';
const SCALED_OBJECT = 'kubernetes:keda.sh/v1alpha1:ScaledObject';
const scaledObject = (target: string, bounds: Record<string, number>) => craft(SCALED_OBJECT, `${target}-scaler`, { metadata: { name: target, namespace: 'platform' }, spec: { scaleTargetRef: { name: target }, ...bounds } });
/** An internet-facing ALB Ingress as platform/workloads renders it; `override` blanks or changes annotations ('' removes one). */
const publicIngress = (override: Record<string, string> = {}, paths: { path: string; pathType: string }[] = [{ path: '/v1', pathType: 'Prefix' }, { path: '/', pathType: 'Exact' }]) => {
  const annotations: Record<string, string> = {
    'alb.ingress.kubernetes.io/scheme': 'internet-facing',
    'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP":80},{"HTTPS":443}]',
    'alb.ingress.kubernetes.io/ssl-redirect': '443',
    'alb.ingress.kubernetes.io/certificate-arn': 'arn:aws:acm:eu-west-1:123456789012:certificate/abc',
    'alb.ingress.kubernetes.io/ssl-policy': 'ELBSecurityPolicy-TLS13-1-2-Res-2021-06',
    'alb.ingress.kubernetes.io/wafv2-acl-arn': 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api/abc',
    ...override,
  };
  for (const [k, v] of Object.entries(annotations)) if (v === '') delete annotations[k];
  return { metadata: { name: 'api', namespace: 'platform', annotations }, spec: { ingressClassName: 'alb', rules: [{ host: 'api.example.com', http: { paths: paths.map((p) => ({ ...p, backend: { service: { name: 'api', port: { name: 'http' } } } })) } }] } };
};
const FIXED_404 = JSON.stringify({ type: 'fixed-response', fixedResponseConfig: { contentType: 'text/plain', statusCode: '404' } });
/** A catch-all ALB Ingress (Grafana's, behind OIDC) whose in-cluster paths, of `pathType`, go to the action `actions.in-cluster-only`. */
const catchAllIngress = (action: string, pathType: string) => {
  const inCluster = ['/metrics', '/healthz', '/readyz'].map((path) => ({ path, pathType, backend: { service: { name: 'in-cluster-only', port: { name: 'use-annotation' } } } }));
  const paths = [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'grafana', port: { number: 80 } } } }, ...inCluster];
  return { ...publicIngress({ 'alb.ingress.kubernetes.io/actions.in-cluster-only': action }), spec: { ingressClassName: 'alb', rules: [{ host: 'grafana.example.com', http: { paths } }] } };
};
const NAMESPACE = 'kubernetes:core/v1:Namespace';
const RELEASE = 'kubernetes:helm.sh/v3:Release';
const INGRESS = 'kubernetes:networking.k8s.io/v1:Ingress';
const ingressTo = (service: string, annotations: Record<string, string> = {}) => ({
  metadata: { name: 'queues', namespace: 'platform', annotations: { 'kubernetes.io/ingress.class': 'alb', ...annotations } },
  spec: { rules: [{ host: 'ops.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service, port: { number: 3000 } } } }] } }] },
});

const doc = (statement: Record<string, unknown>) => JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
/** Pod Security admission labels: enforce at one level, audit and warn at another (default the same). */
const psa = (enforce: string, report = enforce) => ({
  'pod-security.kubernetes.io/enforce': enforce,
  'pod-security.kubernetes.io/audit': report,
  'pod-security.kubernetes.io/warn': report,
});

// ---------------------------------------------------------------- IRSA, logs, network, teardown
const ISSUER = 'oidc.eks.eu-west-1.amazonaws.com/id/ABC123';
const irsaTrust = (condition: Record<string, unknown>) =>
  doc({ Effect: 'Allow', Principal: { Federated: `arn:aws:iam::123456789012:oidc-provider/${ISSUER}` }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: condition });
const LOG_GROUP = 'aws:cloudwatch/logGroup:LogGroup';
const goodLogGroup = (name: string) => ({ name, kmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/x', retentionInDays: 90 });
const VPC_X = 'awsx:ec2:Vpc';
const LBC_RELEASE = () => craft(RELEASE, 'lb-controller', { chart: 'aws-load-balancer-controller', version: '1.13.4' });
const ingressObject = () => ({ metadata: { name: 'api', namespace: 'platform' }, spec: { ingressClassName: 'alb' } });

export const CASES: Record<string, Case> = {
  'aws-s3-bucket-public-access-blocked': {
    bad: [
      { what: 'no public access block', resources: () => [bucket()], message: /has no BucketPublicAccessBlock/ },
      { what: 'one flag off', resources: withCompanion(PAB, { ...allBlocked, restrictPublicBuckets: false }), message: /must set restrictPublicBuckets to true/ },
      { what: 'public ACL', resources: () => { const b = bucket('site', { acl: 'public-read' }); return [b, craft(PAB, 'site-pab', allBlocked, { via: { bucket: [b] } })]; }, message: /public canned ACL 'public-read'/ },
    ],
    good: [{ what: 'all four flags', resources: withCompanion(PAB, allBlocked) }],
  },
  'aws-s3-bucket-encrypted-with-kms': {
    bad: [
      { what: 'no SSE configuration', resources: () => [bucket()], message: /no server-side encryption configuration/ },
      { what: 'SSE-S3 only', resources: withCompanion('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }] }), message: /encrypts with AES256/ },
    ],
    good: [
      { what: 'SSE-KMS', resources: withCompanion('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/x' } }] }) },
      {
        what: 'SSE-S3 on the bucket that receives access logs (S3 delivers into no other)',
        resources: () => {
          const logs = bucket('logs');
          const b = bucket();
          const kms = { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms' } }] };
          return [
            logs,
            b,
            craft('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', 'logs-sse', { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }] }, { via: { bucket: [logs] } }),
            craft('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', 'uploads-sse', kms, { via: { bucket: [b] } }),
            craft('aws:s3/bucketLogging:BucketLogging', 'uploads-logging', {}, { via: { bucket: [b], targetBucket: [logs] } }),
          ];
        },
      },
    ],
  },
  'aws-s3-bucket-versioning-enabled': {
    bad: [
      { what: 'no versioning', resources: () => [bucket()], message: /does not have versioning enabled/ },
      { what: 'suspended', resources: withCompanion('aws:s3/bucketVersioning:BucketVersioning', { versioningConfiguration: { status: 'Suspended' } }), message: /status Suspended/ },
    ],
    good: [{ what: 'enabled', resources: withCompanion('aws:s3/bucketVersioning:BucketVersioning', { versioningConfiguration: { status: 'Enabled' } }) }],
  },
  'aws-s3-bucket-tls-only': {
    bad: [
      { what: 'no bucket policy', resources: () => [bucket()], message: /no bucket policy denying requests without TLS/ },
      { what: 'policy without the TLS deny', resources: withCompanion('aws:s3/bucketPolicy:BucketPolicy', { policy: doc({ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 's3:GetObject', Resource: '*' }) }), message: /no bucket policy denying/ },
    ],
    good: [
      { what: 'deny on aws:SecureTransport=false', resources: withCompanion('aws:s3/bucketPolicy:BucketPolicy', { policy: tlsOnly }) },
      { what: 'matched by literal bucket name', resources: () => [bucket('logs', { bucket: 'pk-logs' }), craft('aws:s3/bucketPolicy:BucketPolicy', 'logs-policy', { bucket: 'pk-logs', policy: JSON.parse(tlsOnly) })] },
    ],
  },
  'aws-rds-storage-encrypted': {
    bad: [{ what: 'storageEncrypted unset', resources: () => [craft(RDS, 'db', { ...goodRds, storageEncrypted: undefined })], message: /must set storageEncrypted: true/ }],
    good: [{ what: 'encrypted', resources: () => [craft(RDS, 'db', goodRds)] }],
  },
  'aws-rds-instance-disallow-public-access': {
    bad: [{ what: 'publiclyAccessible: true', resources: () => [craft(RDS, 'db', { ...goodRds, publiclyAccessible: true })], message: /is publicly accessible/ }],
    good: [
      { what: 'false', resources: () => [craft(RDS, 'db', goodRds)] },
      { what: 'unset (provider default false)', resources: () => [craft(RDS, 'db', { ...goodRds, publiclyAccessible: undefined })] },
    ],
  },
  'aws-rds-backup-retention': {
    bad: [
      { what: '1 day', resources: () => [craft(RDS, 'db', { ...goodRds, backupRetentionPeriod: 1 })], message: /keeps backups for 1 day\(s\); at least 7 required/ },
      { what: 'unset', resources: () => [craft(RDS, 'db', { ...goodRds, backupRetentionPeriod: undefined })], message: /the default 1 day/ },
    ],
    good: [{ what: '7 days', resources: () => [craft(RDS, 'db', goodRds)] }],
  },
  'aws-rds-deletion-protection': {
    bad: [{ what: 'unset', resources: () => [craft(RDS, 'db', { ...goodRds, deletionProtection: undefined })], message: /must set deletionProtection: true/ }],
    good: [{ what: 'on', resources: () => [craft(RDS, 'db', goodRds)] }],
  },
  'aws-rds-instance-multi-az': {
    bad: [{ what: 'single AZ', resources: () => [craft(RDS, 'db', { ...goodRds, multiAz: false })], message: /is not Multi-AZ/ }],
    good: [{ what: 'Multi-AZ', resources: () => [craft(RDS, 'db', goodRds)] }],
  },
  'aws-rds-instance-tls-enforced': {
    bad: [
      { what: 'default parameter group', resources: () => [craft(RDS, 'db', goodRds)], message: /does not use a parameter group from this program, so rds.force_ssl/ },
      { what: 'force_ssl 0', resources: withParameterGroup(RDS, RDS_PG, goodRds, [{ name: 'rds.force_ssl', value: '0' }]), message: /sets rds.force_ssl = 0; it must be 1/ },
    ],
    good: [{ what: 'force_ssl 1', resources: withParameterGroup(RDS, RDS_PG, goodRds, [{ name: 'rds.force_ssl', value: '1' }]) }],
  },
  'aws-elasticache-replication-group-encrypted-at-rest': {
    bad: [{ what: 'unset', resources: () => [craft(REDIS, 'queue', { ...goodRedis, atRestEncryptionEnabled: undefined })], message: /must set atRestEncryptionEnabled: true/ }],
    good: [{ what: 'on', resources: () => [craft(REDIS, 'queue', goodRedis)] }],
  },
  'aws-elasticache-replication-group-encrypted-in-transit': {
    bad: [
      { what: 'unset', resources: () => [craft(REDIS, 'queue', { ...goodRedis, transitEncryptionEnabled: undefined })], message: /must set transitEncryptionEnabled: true/ },
      { what: 'preferred mode', resources: () => [craft(REDIS, 'queue', { ...goodRedis, transitEncryptionMode: 'preferred' })], message: /transitEncryptionMode "preferred"/ },
    ],
    good: [{ what: 'on', resources: () => [craft(REDIS, 'queue', goodRedis)] }],
  },
  'aws-elasticache-replication-group-auth': {
    bad: [{ what: 'no token, no users', resources: () => [craft(REDIS, 'queue', { ...goodRedis, authToken: undefined })], message: /neither an authToken nor userGroupIds/ }],
    good: [
      { what: 'auth token', resources: () => [craft(REDIS, 'queue', goodRedis)] },
      { what: 'RBAC user group', resources: () => [craft(REDIS, 'queue', { ...goodRedis, authToken: undefined, userGroupIds: ['platform-users'] })] },
    ],
  },
  'aws-elasticache-replication-group-automatic-failover': {
    bad: [{ what: 'no failover', resources: () => [craft(REDIS, 'queue', { ...goodRedis, automaticFailoverEnabled: false, multiAzEnabled: undefined })], message: /must set automaticFailoverEnabled and multiAzEnabled to true/ }],
    good: [{ what: 'failover and Multi-AZ', resources: () => [craft(REDIS, 'queue', goodRedis)] }],
  },
  'aws-elasticache-noeviction': {
    bad: [
      { what: 'default parameter group', resources: () => [craft(REDIS, 'queue', goodRedis)], message: /uses a default parameter group .*BullMQ needs noeviction/ },
      { what: 'allkeys-lru', resources: withParameterGroup(REDIS, REDIS_PG, goodRedis, [{ name: 'maxmemory-policy', value: 'allkeys-lru' }]), message: /sets maxmemory-policy = allkeys-lru/ },
    ],
    good: [{ what: 'noeviction', resources: withParameterGroup(REDIS, REDIS_PG, goodRedis, [{ name: 'maxmemory-policy', value: 'noeviction' }]) }],
  },
  'aws-eks-cluster-endpoint-access': {
    bad: [
      { what: 'component defaults (public, open)', resources: () => [craft(EKS, 'cluster', {})], message: /must set endpointPrivateAccess: true[\s\S]*public API endpoint/ },
      { what: 'public endpoint in prod', resources: () => [craft(EKS, 'cluster', { endpointPrivateAccess: true, endpointPublicAccess: true, publicAccessCidrs: ['203.0.113.0/24'] })], message: /this stack requires endpointPublicAccess: false/ },
      { what: 'raw cluster open to the internet in dev', stack: 'dev', resources: () => [craft(EKS_RAW, 'cluster', { vpcConfig: { endpointPrivateAccess: true, endpointPublicAccess: true, publicAccessCidrs: ['0.0.0.0/0'] } })], message: /to 0\.0\.0\.0\/0; restrict publicAccessCidrs/ },
    ],
    good: [
      { what: 'private in prod', resources: () => [craft(EKS, 'cluster', privateCluster)] },
      { what: 'allow-listed public endpoint in dev', stack: 'dev', resources: () => [craft(EKS_RAW, 'cluster', { vpcConfig: { endpointPrivateAccess: true, endpointPublicAccess: true, publicAccessCidrs: ['203.0.113.0/24'] } })] },
    ],
  },
  'aws-eks-cluster-control-plane-logging': {
    bad: [{ what: 'api only', resources: () => [craft(EKS, 'cluster', { enabledClusterLogTypes: ['api'] })], message: /does not log audit, authenticator/ }],
    good: [{ what: 'api, audit, authenticator', resources: () => [craft(EKS_RAW, 'cluster', { enabledClusterLogTypes: ['api', 'audit', 'authenticator', 'scheduler'] })] }],
  },
  'aws-eks-cluster-secrets-encryption': {
    bad: [
      { what: 'component without key', resources: () => [craft(EKS, 'cluster', {})], message: /must set encryptionConfigKeyArn/ },
      { what: 'raw cluster without secrets', resources: () => [craft(EKS_RAW, 'cluster', { encryptionConfig: { resources: [], provider: { keyArn: 'arn:aws:kms:eu-west-1:1:key/x' } } })], message: /must encrypt secrets/ },
    ],
    good: [
      { what: 'component key', resources: () => [craft(EKS, 'cluster', { encryptionConfigKeyArn: 'arn:aws:kms:eu-west-1:1:key/x' })] },
      { what: 'raw encryptionConfig', resources: () => [craft(EKS_RAW, 'cluster', { encryptionConfig: { resources: ['secrets'], provider: { keyArn: 'arn:aws:kms:eu-west-1:1:key/x' } } })] },
    ],
  },
  'aws-eks-node-group-private-subnets': {
    bad: [
      { what: 'node group in a public subnet', resources: () => { const c = craft(EKS, 'cluster', privateCluster); return [c, craft(MNG, 'general', { subnetIds: ['subnet-priv-a', 'subnet-pub-b'] })]; }, message: /places nodes in non-private subnets: subnet-pub-b/ },
      { what: 'node group without subnetIds', resources: () => [craft(EKS, 'cluster', privateCluster), craft('aws:eks/nodeGroup:NodeGroup', 'raw', {})], message: /does not set subnetIds/ },
      { what: 'default node group with public IPs', resources: () => [craft(EKS, 'cluster', { ...privateCluster, skipDefaultNodeGroup: undefined })], message: /nodeAssociatePublicIpAddress defaults to true/ },
    ],
    good: [{ what: 'private subnets only', resources: () => [craft(EKS, 'cluster', privateCluster), craft(MNG, 'general', { subnetIds: ['subnet-priv-a', 'subnet-priv-b'] })] }],
  },
  'aws-ec2-security-group-no-public-ingress': {
    bad: [
      { what: 'SSH from the internet', resources: () => [craft('aws:ec2/securityGroup:SecurityGroup', 'nodes', { ingress: [{ protocol: 'tcp', fromPort: 22, toPort: 22, cidrBlocks: ['0.0.0.0/0'] }] })], message: /admits 0\.0\.0\.0\/0 on tcp port 22/ },
      { what: 'load balancer on 8080 over IPv6', resources: () => [craft('aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'web-alb-8080', { ipProtocol: 'tcp', fromPort: 8080, toPort: 8080, cidrIpv6: '::/0' })], message: /admits ::\/0 on tcp port 8080 \(a load balancer may only open TCP 80\/443\)/ },
      { what: 'all traffic rule', resources: () => [craft('aws:ec2/securityGroupRule:SecurityGroupRule', 'db-any', { type: 'ingress', protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] })], message: /on all protocols port 0/ },
    ],
    good: [
      { what: 'load balancer on 443', resources: () => [craft('aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'public-alb-https', { ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIpv4: '0.0.0.0/0' })] },
      { what: 'VPC-only ingress and open egress', resources: () => [craft('aws:ec2/securityGroup:SecurityGroup', 'db', { ingress: [{ protocol: 'tcp', fromPort: 5432, toPort: 5432, cidrBlocks: ['10.0.0.0/16'] }], egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }] })] },
    ],
  },
  'aws-ec2-imdsv2-required': {
    bad: [
      { what: 'launch template default', resources: () => [craft('aws:ec2/launchTemplate:LaunchTemplate', 'nodes', {})], message: /allows IMDSv1 \(metadataOptions.httpTokens is unset/ },
      { what: 'managed node group without launch template', resources: () => [craft(MNG, 'general', { subnetIds: ['subnet-priv-a'] })], message: /has no launch template/ },
      { what: 'default node group', resources: () => [craft(EKS, 'cluster', {})], message: /set skipDefaultNodeGroup: true/ },
    ],
    good: [
      { what: 'required tokens', resources: () => [craft('aws:ec2/launchTemplate:LaunchTemplate', 'nodes', { metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 1 } })] },
      { what: 'node group with launch template', resources: () => [craft(MNG, 'general', { launchTemplate: { id: 'lt-1', version: '1' } }), craft(EKS, 'cluster', { skipDefaultNodeGroup: true })] },
    ],
  },
  'aws-iam-no-wildcard-admin-or-write': {
    bad: [
      { what: 'Action *', resources: () => [craft('aws:iam/policy:Policy', 'admin', { policy: doc({ Effect: 'Allow', Action: '*', Resource: '*' }) })], message: /allows "Action": "\*"/ },
      { what: 'write on Resource *', resources: () => [craft('aws:iam/rolePolicy:RolePolicy', 'worker', { policy: doc({ Sid: 'Objects', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: '*' }) })], message: /statement Objects allows write actions \(s3:PutObject\) on "Resource": "\*"/ },
      { what: 'service wildcard on a role inline policy', resources: () => [craft('aws:iam/role:Role', 'api', { inlinePolicies: [{ name: 'x', policy: doc({ Effect: 'Allow', Action: 's3:*', Resource: '*' }) }] })], message: /write actions \(s3:\*\)/ },
      { what: 'AdministratorAccess attachment', resources: () => [craft('aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'ci', { policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' })], message: /attaches the AWS managed AdministratorAccess/ },
      { what: 'unparseable document', resources: () => [craft('aws:iam/policy:Policy', 'broken', { policy: '{not json' })], message: /not valid JSON/ },
    ],
    good: [
      { what: 'scoped writes, wildcard reads, conditioned create', resources: () => [craft('aws:iam/policy:Policy', 'worker', { policy: JSON.stringify({ Version: '2012-10-17', Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: 'arn:aws:s3:::uploads/files/*' },
        { Effect: 'Allow', Action: ['ec2:Describe*', 'ecr:GetAuthorizationToken'], Resource: '*' },
        { Effect: 'Allow', Action: 'ec2:CreateSecurityGroup', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/elbv2.k8s.aws/cluster': 'platform' } } },
      ] }) })] },
      { what: 'read-only managed policy', resources: () => [craft('aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'nodes-ecr', { policyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly' })] },
    ],
  },
  'aws-ecr-repository-scan-on-push': {
    bad: [{ what: 'no scanning', resources: () => [craft('aws:ecr/repository:Repository', 'app', {})], message: /does not scan images on push/ }],
    good: [{ what: 'scan on push', resources: () => [craft('aws:ecr/repository:Repository', 'app', { imageScanningConfiguration: { scanOnPush: true } })] }],
  },
  'aws-ecr-repository-immutable-tags': {
    bad: [{ what: 'mutable default', resources: () => [craft('aws:ecr/repository:Repository', 'app', {})], message: /MUTABLE \(the default\) tags/ }],
    good: [{ what: 'immutable', resources: () => [craft('aws:ecr/repository:Repository', 'app', { imageTagMutability: 'IMMUTABLE' })] }],
  },
  'aws-ecr-repository-lifecycle-policy': {
    bad: [{ what: 'no lifecycle policy', resources: () => [craft('aws:ecr/repository:Repository', 'app', {})], message: /has no lifecycle policy/ }],
    good: [{ what: 'lifecycle policy', resources: () => { const repo = craft('aws:ecr/repository:Repository', 'app', {}); return [repo, craft('aws:ecr/lifecyclePolicy:LifecyclePolicy', 'app-lifecycle', { policy: '{}' }, { via: { repository: [repo] } })]; } }],
  },
  'aws-required-tags': {
    bad: [
      { what: 'no tags at all', resources: () => [craft('aws:kms/key:Key', 'data', {})], message: /missing tag\(s\) project, stack, owner, cost-centre/ },
      { what: 'provider defaults without owner', resources: () => { const p = craft('pulumi:providers:aws', 'aws', { defaultTags: JSON.stringify({ tags: { project: 'platform-kit', stack: 'prod', 'cost-centre': 'cc-42' } }) }); return [p, craft('aws:kms/key:Key', 'data', {}, { provider: p })]; }, message: /missing tag\(s\) owner\./ },
    ],
    good: [
      { what: 'provider default tags', resources: () => { const p = craft('pulumi:providers:aws', 'aws', { defaultTags: { tags: { project: 'platform-kit', stack: 'prod', owner: 'platform', 'cost-centre': 'cc-42' } } }); return [p, craft('aws:kms/key:Key', 'data', {}, { provider: p }), craft('aws:ec2/securityGroupRule:SecurityGroupRule', 'untaggable', {})]; } },
      { what: 'own tags', resources: () => [craft('aws:s3/bucket:Bucket', 'b', { tags: { project: 'p', stack: 's', owner: 'o', 'cost-centre': 'c' } })] },
    ],
  },
  'aws-instance-class-allow-list': {
    bad: [
      { what: 'large RDS class in dev', stack: 'dev', resources: () => [craft(RDS, 'db', { instanceClass: 'db.r6g.2xlarge' })], message: /uses db\.r6g\.2xlarge, outside this stack's allowed instance classes/ },
      { what: 'GPU node group in prod', resources: () => [craft(MNG, 'gpu', { instanceTypes: ['m6i.large', 'p4d.24xlarge'] })], message: /uses p4d\.24xlarge/ },
      { what: 'default node group t3.medium is fine but m5.large in dev is not', stack: 'dev', resources: () => [craft(EKS, 'cluster', { instanceType: 'm5.large' })], message: /uses m5\.large/ },
    ],
    good: [
      { what: 'burstable classes in dev', stack: 'dev', resources: () => [craft(RDS, 'db', { instanceClass: 'db.t4g.micro' }), craft(REDIS, 'q', { nodeType: 'cache.t4g.small' }), craft(MNG, 'general', { instanceTypes: ['t3.large'] })] },
      { what: 'current generation in prod', resources: () => [craft(RDS, 'db', { instanceClass: 'db.r6g.large' }), craft(MNG, 'general', { instanceTypes: ['m6i.xlarge'] }), craft(EKS, 'cluster', { skipDefaultNodeGroup: true })] },
    ],
  },
  'kubernetes-pod-security-restricted': {
    bad: [
      { what: 'root, escalation, capabilities, seccomp, writable root', resources: () => [craft(DEPLOYMENT, 'api', deployment({ name: 'api', image: 'app:1.0.0' }, { pod: { securityContext: {} } }))], message: /breaks Pod Security restricted: container 'api' must set allowPrivilegeEscalation: false; container 'api' must drop ALL capabilities; container 'api' must run as non-root \(runAsNonRoot: true\); container 'api' must set seccompProfile.type RuntimeDefault; container 'api' must set readOnlyRootFilesystem: true/ },
      { what: 'hostPath in a restricted namespace', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer, { pod: { volumes: [{ name: 'logs', hostPath: { path: '/var/log' } }] } }))], message: /volume 'logs' is a hostPath/ },
      { what: 'a host agent in monitoring, which is no exception', resources: () => [craft('kubernetes:apps/v1:DaemonSet', 'agent', deployment({ ...hardenedContainer, name: 'agent', securityContext: { ...hardenedContainer.securityContext, privileged: true } }, { namespace: 'monitoring', pod: { hostPID: true } }))], message: /in namespace 'monitoring' breaks Pod Security restricted: pod sets hostPID: true; container 'agent' is privileged/ },
      { what: 'a host agent in a namespace named like the exception', resources: () => [craft('kubernetes:apps/v1:DaemonSet', 'agent', deployment({ ...hardenedContainer, name: 'agent' }, { namespace: 'monitoring-node-agents-2', pod: { hostNetwork: true } }))], message: /breaks Pod Security restricted: pod sets hostNetwork: true/ },
    ],
    good: [
      { what: 'hardened pod', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer))] },
      { what: 'node-exporter on the host in the listed node agents namespace', resources: () => [craft('kubernetes:apps/v1:DaemonSet', 'node-exporter', deployment({ name: 'node-exporter', image: 'quay.io/prometheus/node-exporter:v1.9.1', securityContext: {} }, { namespace: 'monitoring-node-agents', pod: { hostNetwork: true, hostPID: true, securityContext: {}, volumes: [{ name: 'root', hostPath: { path: '/' } }] } }))] },
    ],
  },
  'kubernetes-namespace-pod-security-admission': {
    bad: [
      { what: 'no label', resources: () => [craft(NAMESPACE, 'platform', { metadata: { name: 'platform' } })], message: /enforces no Pod Security level; label pod-security.kubernetes.io\/enforce: restricted/ },
      { what: 'the listed exception without the reason', resources: () => [craft(NAMESPACE, 'agents', { metadata: { name: 'monitoring-node-agents', labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } })], message: /enforces privileged but does not say why/ },
      { what: 'baseline outside the exceptions', resources: () => [craft(NAMESPACE, 'platform', { metadata: { name: 'platform', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } })], message: /enforces baseline; label .*: restricted/ },
      { what: 'enforce without audit and warn', resources: () => [craft(NAMESPACE, 'platform', { metadata: { name: 'platform', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } })], message: /does not audit or warn about Pod Security violations; label pod-security.kubernetes.io\/audit and pod-security.kubernetes.io\/warn/ },
      { what: 'warn looser than enforce', resources: () => [craft(NAMESPACE, 'platform', { metadata: { name: 'platform', labels: { ...psa('restricted'), 'pod-security.kubernetes.io/warn': 'baseline' } } })], message: /does not warn about Pod Security violations/ },
      { what: 'monitoring as a whole, with a reason: no blanket pass', resources: () => [craft(NAMESPACE, 'monitoring', { metadata: { name: 'monitoring', labels: psa('privileged', 'restricted'), annotations: { 'platform-kit.io/pod-security-exception': 'node agents' } } })], message: /'monitoring' enforces privileged; label .*: restricted\./ },
      { what: 'monitoring at baseline with a reason: Prometheus, Grafana and Loki get no exception', resources: () => [craft(NAMESPACE, 'monitoring', { metadata: { name: 'monitoring', labels: psa('baseline', 'restricted'), annotations: { 'platform-kit.io/pod-security-exception': 'node agents read host metrics' } } })], message: /'monitoring' enforces baseline; label .*: restricted\./ },
      { what: 'a name like the exception', resources: () => [craft(NAMESPACE, 'agents', { metadata: { name: 'monitoring-node-agents-2', labels: psa('privileged', 'restricted'), annotations: { 'platform-kit.io/pod-security-exception': 'node agents' } } })], message: /enforces privileged; label .*: restricted\./ },
    ],
    good: [
      { what: 'restricted in all three modes', resources: () => [craft(NAMESPACE, 'platform', { metadata: { name: 'platform', labels: psa('restricted') } })] },
      { what: 'the node agents namespace enforcing privileged with its reason, auditing and warning at restricted', resources: () => [craft(NAMESPACE, 'agents', { metadata: { name: 'monitoring-node-agents', labels: psa('privileged', 'restricted'), annotations: { 'platform-kit.io/pod-security-exception': 'node agents read the host' } } })] },
    ],
  },
  'kubernetes-container-resources': {
    bad: [{ what: 'no resources', resources: () => [craft(DEPLOYMENT, 'api', deployment({ ...hardenedContainer, resources: { requests: { cpu: '100m' } } }))], message: /container 'api' has no requests.memory, limits.memory/ }],
    good: [{ what: 'requests and memory limit', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer))] }],
  },
  'kubernetes-container-probes': {
    bad: [{ what: 'no probes', resources: () => [craft(DEPLOYMENT, 'api', deployment({ ...hardenedContainer, readinessProbe: undefined, livenessProbe: undefined }))], message: /container 'api' has no readinessProbe or livenessProbe/ }],
    good: [
      { what: 'both probes', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer))] },
      { what: 'a Job needs none', resources: () => [craft('kubernetes:batch/v1:Job', 'migrate', { spec: { template: { spec: { containers: [{ name: 'migrate', image: 'app:1.0.0' }] } } } })] },
    ],
  },
  'kubernetes-image-pinned': {
    bad: [
      { what: ':latest', resources: () => [craft(DEPLOYMENT, 'api', deployment({ ...hardenedContainer, image: 'nginx:latest' }))], message: /uses nginx:latest/ },
      { what: 'untagged behind a registry port', resources: () => [craft(DEPLOYMENT, 'api', deployment({ ...hardenedContainer, image: 'registry.local:5000/team/app' }))], message: /untagged image registry\.local:5000\/team\/app/ },
    ],
    good: [
      { what: 'tag', resources: () => [craft(DEPLOYMENT, 'api', deployment({ ...hardenedContainer, image: 'registry.local:5000/team/app:1.4.2' }))] },
      { what: 'digest', resources: () => [craft(DEPLOYMENT, 'api', deployment({ ...hardenedContainer, image: 'app@sha256:0123456789abcdef' }))] },
    ],
  },
  'kubernetes-service-no-load-balancer': {
    bad: [{ what: 'LoadBalancer in platform', resources: () => [craft('kubernetes:core/v1:Service', 'api', { metadata: { namespace: 'platform' }, spec: { type: 'LoadBalancer' } })], message: /in namespace 'platform' is of type LoadBalancer/ }],
    good: [
      { what: 'ClusterIP', resources: () => [craft('kubernetes:core/v1:Service', 'api', { metadata: { namespace: 'platform' }, spec: { type: 'ClusterIP' } })] },
      { what: 'the ingress controller', resources: () => [craft('kubernetes:core/v1:Service', 'controller', { metadata: { namespace: 'ingress-nginx' }, spec: { type: 'LoadBalancer' } })] },
    ],
  },
  'kubernetes-pdb-per-multi-replica-workload': {
    bad: [
      { what: 'three replicas, no PDB', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer, { replicas: 3 }))], message: /runs up to 3 replicas but no PodDisruptionBudget selects its pods/ },
      { what: 'HPA min 2, PDB selecting other pods', resources: () => { const d = craft(DEPLOYMENT, 'api', deployment(hardenedContainer)); return [d, craft(HPA, 'api', { metadata: { namespace: 'platform' }, spec: { minReplicas: 2, scaleTargetRef: { kind: 'Deployment', name: 'api' } } }), craft('kubernetes:policy/v1:PodDisruptionBudget', 'worker', { metadata: { namespace: 'platform' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'worker' } } } })]; }, message: /runs up to 2 replicas/ },
      { what: 'one replica a KEDA ScaledObject may scale to ten', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), scaledObject('api', { minReplicaCount: 1, maxReplicaCount: 10 })], message: /runs up to 10 replicas/ },
      { what: 'a ScaledObject whose maximum is KEDA\'s default', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), scaledObject('api', { minReplicaCount: 0 })], message: /runs up to 100 replicas/ },
    ],
    good: [
      { what: 'matching PDB', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer, { replicas: 3 })), craft('kubernetes:policy/v1:PodDisruptionBudget', 'api', { metadata: { namespace: 'platform' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'api' } } } })] },
      { what: 'single replica needs none', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer))] },
      { what: 'a KEDA-scaled workload with its PDB', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), scaledObject('api', { minReplicaCount: 2, maxReplicaCount: 10 }), craft('kubernetes:policy/v1:PodDisruptionBudget', 'api', { metadata: { namespace: 'platform' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'api' } } } })] },
      { what: 'a ScaledObject that targets another workload', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), scaledObject('worker', { minReplicaCount: 2, maxReplicaCount: 10 })] },
    ],
  },
  'kubernetes-one-autoscaler-per-workload': {
    bad: [
      { what: 'an HPA beside the ScaledObject', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), scaledObject('api', { maxReplicaCount: 5 }), craft(HPA, 'api-cpu', { metadata: { namespace: 'platform' }, spec: { minReplicas: 1, maxReplicas: 4, scaleTargetRef: { kind: 'Deployment', name: 'api' } } })], message: /is scaled by .*ScaledObject.* and .*HorizontalPodAutoscaler.*; one autoscaler per workload/ },
      { what: 'two HPAs', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), ...['cpu', 'memory'].map((m) => craft(HPA, `api-${m}`, { metadata: { namespace: 'platform' }, spec: { maxReplicas: 4, scaleTargetRef: { kind: 'Deployment', name: 'api' } } }))], message: /one autoscaler per workload/ },
    ],
    good: [
      { what: 'an HPA for one workload, a ScaledObject for another', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), craft(HPA, 'api', { metadata: { namespace: 'platform' }, spec: { maxReplicas: 4, scaleTargetRef: { kind: 'Deployment', name: 'api' } } }), scaledObject('worker', { maxReplicaCount: 5 })] },
      { what: 'same names in other namespaces', resources: () => [craft(DEPLOYMENT, 'api', deployment(hardenedContainer)), craft(HPA, 'api', { metadata: { namespace: 'platform' }, spec: { maxReplicas: 4, scaleTargetRef: { kind: 'Deployment', name: 'api' } } }), craft(SCALED_OBJECT, 'api', { metadata: { namespace: 'staging' }, spec: { scaleTargetRef: { name: 'api' } } })] },
    ],
  },
  'kubernetes-ingress-alb-https-only': {
    bad: [
      { what: 'plain HTTP', resources: () => [craft(INGRESS, 'api', publicIngress({ 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP":80}]', 'alb.ingress.kubernetes.io/certificate-arn': '', 'alb.ingress.kubernetes.io/ssl-redirect': '' }))], message: /listens on no HTTPS port.*names no ACM certificate.*serves instead of redirecting/ },
      { what: 'the default TLS policy', resources: () => [craft(INGRESS, 'api', publicIngress({ 'alb.ingress.kubernetes.io/ssl-policy': '' }))], message: /TLS policy \(the default, which allows TLS 1\.0\)/ },
      { what: 'a TLS 1.0 policy', resources: () => [craft(INGRESS, 'api', publicIngress({ 'alb.ingress.kubernetes.io/ssl-policy': 'ELBSecurityPolicy-2016-08' }))], message: /ELBSecurityPolicy-2016-08 is not a TLS 1\.2\+/ },
      { what: 'a catch-all path that routes /metrics', resources: () => [craft(INGRESS, 'api', publicIngress({}, [{ path: '/', pathType: 'Prefix' }]))], message: /routes \/metrics to the internet \(path Prefix \/\).*routes \/healthz/ },
      { what: 'the metrics path itself', resources: () => [craft(INGRESS, 'api', publicIngress({}, [{ path: '/metrics', pathType: 'Exact' }]))], message: /routes \/metrics to the internet/ },
      { what: 'no web ACL in prod', resources: () => [craft(INGRESS, 'api', publicIngress({ 'alb.ingress.kubernetes.io/wafv2-acl-arn': '' }))], message: /has no WAF web ACL/ },
      // The controller ranks Prefix paths above ImplementationSpecific ones, so the catch-all wins.
      { what: 'a fixed response the catch-all outranks', resources: () => [craft(INGRESS, 'grafana', catchAllIngress(FIXED_404, 'ImplementationSpecific'))], message: /routes \/metrics to the internet \(path Prefix \/\)/ },
      { what: 'in-cluster paths sent to a forwarding action', resources: () => [craft(INGRESS, 'grafana', catchAllIngress(JSON.stringify({ type: 'forward', forwardConfig: { targetGroups: [{ serviceName: 'grafana', servicePort: '80' }] } }), 'Exact'))], message: /routes \/metrics to the internet \(path Exact \/metrics\)/ },
    ],
    good: [
      { what: 'HTTPS with redirect, modern policy, public paths and a web ACL', resources: () => [craft(INGRESS, 'api', publicIngress())] },
      { what: 'no web ACL in dev', stack: 'dev', resources: () => [craft(INGRESS, 'api', publicIngress({ 'alb.ingress.kubernetes.io/wafv2-acl-arn': '' }))] },
      { what: 'an internal ALB', resources: () => [craft(INGRESS, 'admin', publicIngress({ 'alb.ingress.kubernetes.io/scheme': 'internal', 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP":80}]' }))] },
      { what: 'a catch-all whose in-cluster paths the load balancer answers itself', resources: () => [craft(INGRESS, 'grafana', catchAllIngress(FIXED_404, 'Exact'))] },
    ],
  },
  'kubernetes-network-policy-per-namespace': {
    bad: [{ what: 'namespace without policy', resources: () => [craft(NAMESPACE, 'platform', { metadata: { name: 'platform' } })], message: /has no NetworkPolicy/ }],
    good: [
      { what: 'policy depending on the namespace', resources: () => { const ns = craft(NAMESPACE, 'platform', {}); return [ns, craft('kubernetes:networking.k8s.io/v1:NetworkPolicy', 'default-deny', { metadata: { namespace: 'platform-3f2a' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } }, { via: { metadata: [ns] } })]; } },
      { what: 'policy naming the namespace', resources: () => [craft(NAMESPACE, 'ns', { metadata: { name: 'platform' } }), craft('kubernetes:networking.k8s.io/v1:NetworkPolicy', 'default-deny', { metadata: { namespace: 'platform' }, spec: { podSelector: {} } })] },
    ],
  },
  'kubernetes-helm-chart-pinned': {
    bad: [
      { what: 'no version', resources: () => [craft(RELEASE, 'keda', { chart: 'keda', repositoryOpts: { repo: 'https://kedacore.github.io/charts' } })], message: /installs chart keda without a version/ },
      { what: 'a range', resources: () => [craft('kubernetes:helm.sh/v4:Chart', 'metrics', { chart: 'metrics-server', version: '^3.12.0' })], message: /at '\^3\.12\.0', which is not an exact version/ },
      { what: 'latest image in values', resources: () => [craft(RELEASE, 'lbc', { chart: 'aws-load-balancer-controller', version: '1.13.4', values: { image: { repository: 'public.ecr.aws/eks/aws-load-balancer-controller', tag: 'latest' } } })], message: /pins an image to latest at values\.image\.tag/ },
    ],
    good: [
      { what: 'exact version', resources: () => [craft(RELEASE, 'keda', { chart: 'keda', version: '2.17.2', repositoryOpts: { repo: 'https://kedacore.github.io/charts' }, values: { image: { keda: { tag: '2.17.2' } } } })] },
      { what: 'local chart', resources: () => [craft(RELEASE, 'local', { chart: './charts/platform' })] },
    ],
  },
  'kubernetes-helm-release-declared-namespace': {
    bad: [{ what: 'createNamespace', resources: () => [craft(RELEASE, 'keda', { chart: 'keda', version: '2.17.2', namespace: 'keda', createNamespace: true })], message: /lets Helm create namespace 'keda'/ }],
    good: [{ what: 'declared namespace', resources: () => [craft(RELEASE, 'keda', { chart: 'keda', version: '2.17.2', namespace: 'keda' })] }],
  },
  'platform-queue-dashboard-requires-auth': {
    bad: [
      { what: 'Ingress to bull-board without auth', resources: () => [craft(INGRESS, 'queues', ingressTo('bull-board'))], message: /exposes the queue dashboard bull-board without an authentication annotation/ },
      { what: 'dashboard as NodePort', resources: () => [craft('kubernetes:core/v1:Service', 'arena', { metadata: { name: 'arena' }, spec: { type: 'NodePort' } })], message: /directly as a NodePort Service/ },
      { what: 'Grafana anonymous', resources: () => [craft(RELEASE, 'monitoring', { chart: 'kube-prometheus-stack', version: '75.0.0', values: { grafana: { 'grafana.ini': { 'auth.anonymous': { enabled: true } } } } })], message: /enables Grafana anonymous access/ },
    ],
    good: [
      { what: 'Ingress with ALB OIDC', resources: () => [craft(INGRESS, 'queues', ingressTo('bull-board', { 'alb.ingress.kubernetes.io/auth-type': 'oidc' }))] },
      { what: 'the API ingress is not a dashboard', resources: () => [craft(INGRESS, 'api', ingressTo('api'))] },
    ],
  },
  'platform-monitoring-crds-dependency': {
    bad: [
      { what: 'ServiceMonitor without dependency', resources: () => [craft(RELEASE, 'prometheus', { chart: 'kube-prometheus-stack', version: '75.0.0' }), craft('kubernetes:monitoring.coreos.com/v1:ServiceMonitor', 'api', {})], message: /ServiceMonitor 'api' does not depend on the chart or CRD/ },
    ],
    good: [
      { what: 'through dependsOn', resources: () => { const chart = craft(RELEASE, 'prometheus', { chart: 'kube-prometheus-stack', version: '75.0.0' }); return [chart, craft('kubernetes:monitoring.coreos.com/v1:PrometheusRule', 'slo', {}, { dependsOn: [chart] })]; } },
      { what: 'through a parent that depends on the CRD chart', resources: () => { const crds = craft(RELEASE, 'crds', { chart: 'prometheus-operator-crds', version: '21.0.0' }); const parent = craft('platform:index:Workloads', 'workloads', {}, { dependsOn: [crds] }); return [crds, parent, craft('kubernetes:monitoring.coreos.com/v1:ServiceMonitor', 'api', {}, { parent })]; } },
    ],
  },
  'aws-s3-bucket-access-logging': {
    bad: [
      { what: 'no logging', resources: () => [bucket()], message: /has no server access logging/ },
      {
        what: 'a bucket logging into itself',
        resources: () => {
          const b = bucket();
          return [b, craft('aws:s3/bucketLogging:BucketLogging', 'self', { targetPrefix: 'x/' }, { via: { bucket: [b], targetBucket: [b] } })];
        },
        message: /logs Bucket 'uploads' into itself/,
      },
    ],
    good: [
      {
        what: 'logged into a log bucket, which itself is exempt',
        resources: () => {
          const logs = bucket('logs');
          const b = bucket();
          return [logs, b, craft('aws:s3/bucketLogging:BucketLogging', 'uploads-logging', { targetPrefix: 's3-access/uploads/' }, { via: { bucket: [b], targetBucket: [logs] } })];
        },
      },
    ],
  },
  'aws-s3-bucket-lifecycle-configured': {
    bad: [
      { what: 'no lifecycle', resources: () => [bucket()], message: /has no enabled lifecycle rule/ },
      { what: 'only disabled rules', resources: withCompanion('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration', { rules: [{ id: 'x', status: 'Disabled', expiration: { days: 30 } }] }), message: /has no enabled lifecycle rule/ },
    ],
    good: [{ what: 'an enabled expiry', resources: withCompanion('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration', { rules: [{ id: 'expire', status: 'Enabled', expiration: { days: 30 } }] }) }],
  },
  'aws-rds-final-snapshot': {
    bad: [
      { what: 'skipFinalSnapshot', resources: () => [craft(RDS, 'db', { ...goodRds, skipFinalSnapshot: true })], message: /skips the final snapshot on delete/ },
      { what: 'no identifier', resources: () => [craft(RDS, 'db', goodRds)], message: /has no finalSnapshotIdentifier/ },
    ],
    good: [{ what: 'final snapshot named', resources: () => [craft(RDS, 'db', { ...goodRds, skipFinalSnapshot: false, finalSnapshotIdentifier: 'platform-kit-prod-database-final' })] }],
  },
  'aws-rds-engine-version-major-only': {
    bad: [{ what: 'a pinned minor with automatic minor upgrades', resources: () => [craft(RDS, 'db', { ...goodRds, engineVersion: '16.8', autoMinorVersionUpgrade: true })], message: /pins engineVersion 16\.8 .*pin 16 only/ }],
    good: [
      { what: 'the major only', resources: () => [craft(RDS, 'db', { ...goodRds, engineVersion: '16' })] },
      { what: 'a MySQL major (8.0)', resources: () => [craft(RDS, 'db', { ...goodRds, engine: 'mysql', engineVersion: '8.0' })] },
      { what: 'a pinned minor without automatic upgrades', resources: () => [craft(RDS, 'db', { ...goodRds, engineVersion: '16.8', autoMinorVersionUpgrade: false })] },
    ],
  },
  'aws-eks-addon-version-pinned': {
    bad: [
      { what: 'unset', resources: () => [craft('aws:eks/addon:Addon', 'coredns', { addonName: 'coredns' })], message: /does not pin addonVersion/ },
      { what: 'not a build', resources: () => [craft('aws:eks/addon:Addon', 'coredns', { addonName: 'coredns', addonVersion: 'latest' })], message: /pins addonVersion 'latest'/ },
    ],
    good: [{ what: 'exact build', resources: () => [craft('aws:eks/addon:Addon', 'coredns', { addonName: 'coredns', addonVersion: 'v1.12.1-eksbuild.2' })] }],
  },
  'aws-eks-node-group-version-follows-cluster': {
    bad: [
      { what: 'no version', resources: () => { const c = craft(EKS, 'cluster', { version: '1.33' }); return [c, craft(MNG, 'jobs', {}, { via: { cluster: [c] } })]; }, message: /does not state its Kubernetes version/ },
      { what: 'left behind', resources: () => { const c = craft(EKS, 'cluster', { version: '1.34' }); return [c, craft(MNG, 'jobs', { version: '1.33' }, { via: { cluster: [c] } })]; }, message: /runs 1\.33 while Cluster 'cluster' runs 1\.34/ },
    ],
    good: [{ what: 'same version', resources: () => { const c = craft(EKS, 'cluster', { version: '1.33' }); return [c, craft(MNG, 'jobs', { version: '1.33' }, { via: { cluster: [c] } })]; } }],
  },
  'aws-ec2-default-security-group-no-rules': {
    bad: [
      { what: 'VPC left with its default group', resources: () => [craft(VPC_X, 'vpc', {})], message: /leaves its default security group as AWS created it/ },
      {
        what: 'default group keeping rules',
        resources: () => {
          const vpc = craft(VPC_X, 'vpc', {});
          return [vpc, craft('aws:ec2/defaultSecurityGroup:DefaultSecurityGroup', 'default', { ingress: [{ protocol: '-1', self: true, fromPort: 0, toPort: 0 }], egress: [] }, { via: { vpcId: [vpc] } })];
        },
        message: /keeps 1 rule\(s\)/,
      },
    ],
    good: [{ what: 'adopted and emptied', resources: () => { const vpc = craft(VPC_X, 'vpc', {}); return [vpc, craft('aws:ec2/defaultSecurityGroup:DefaultSecurityGroup', 'default', { ingress: [], egress: [] }, { via: { vpcId: [vpc] } })]; } }],
  },
  'aws-vpc-flow-logs-enabled': {
    bad: [
      { what: 'no flow log', resources: () => [craft(VPC_X, 'vpc', {})], message: /has no flow log/ },
      { what: 'rejected traffic only', resources: () => { const vpc = craft(VPC_X, 'vpc', {}); return [vpc, craft('aws:ec2/flowLog:FlowLog', 'fl', { trafficType: 'REJECT' }, { via: { vpcId: [vpc] } })]; }, message: /logs only REJECT traffic/ },
    ],
    good: [{ what: 'all traffic to S3', resources: () => { const vpc = craft(VPC_X, 'vpc', {}); return [vpc, craft('aws:ec2/flowLog:FlowLog', 'fl', { trafficType: 'ALL', logDestinationType: 's3' }, { via: { vpcId: [vpc] } })]; } }],
  },
  'aws-ec2-detailed-monitoring-read': {
    bad: [{ what: 'detailed monitoring nobody reads', resources: () => [craft('aws:ec2/launchTemplate:LaunchTemplate', 'nodes', { monitoring: { enabled: true } })], message: /enables detailed monitoring but its platform-kit.io\/detailed-monitoring-reader tag/ }],
    good: [
      { what: 'basic monitoring', resources: () => [craft('aws:ec2/launchTemplate:LaunchTemplate', 'nodes', { monitoring: { enabled: false } })] },
      { what: 'a named reader', resources: () => [craft('aws:ec2/launchTemplate:LaunchTemplate', 'nodes', { monitoring: { enabled: true }, tags: { 'platform-kit.io/detailed-monitoring-reader': 'ASG CPU alarm' } })] },
    ],
  },
  'aws-iam-irsa-trust-conditions': {
    bad: [
      { what: 'no sub: any pod of the cluster', resources: () => [craft('aws:iam/role:Role', 'worker', { assumeRolePolicy: irsaTrust({ StringEquals: { [`${ISSUER}:aud`]: 'sts.amazonaws.com' } }) })], message: /lets any service account of .* assume the role/ },
      { what: 'a wildcard sub', resources: () => [craft('aws:iam/role:Role', 'worker', { assumeRolePolicy: irsaTrust({ StringEquals: { [`${ISSUER}:sub`]: 'system:serviceaccount:platform:*', [`${ISSUER}:aud`]: 'sts.amazonaws.com' } }) })], message: /pins .*:sub to system:serviceaccount:platform:\*, not to one service account/ },
      { what: 'no aud', resources: () => [craft('aws:iam/role:Role', 'worker', { assumeRolePolicy: irsaTrust({ StringEquals: { [`${ISSUER}:sub`]: 'system:serviceaccount:platform:worker' } }) })], message: /must pin .*:aud to sts.amazonaws.com/ },
    ],
    good: [
      { what: 'sub and aud pinned', resources: () => [craft('aws:iam/role:Role', 'worker', { assumeRolePolicy: irsaTrust({ StringEquals: { [`${ISSUER}:sub`]: 'system:serviceaccount:platform:worker', [`${ISSUER}:aud`]: 'sts.amazonaws.com' } }) })] },
      { what: 'a service role is not IRSA', resources: () => [craft('aws:iam/role:Role', 'nodes', { assumeRolePolicy: doc({ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }) })] },
    ],
  },
  'aws-kms-key-rotation-enabled': {
    bad: [{ what: 'rotation unset', resources: () => [craft('aws:kms/key:Key', 'data', {})], message: /does not rotate its key material \(enableKeyRotation is unset/ }],
    good: [
      { what: 'rotating', resources: () => [craft('aws:kms/key:Key', 'data', { enableKeyRotation: true })] },
      { what: 'an asymmetric signing key (cannot rotate)', resources: () => [craft('aws:kms/key:Key', 'signing', { customerMasterKeySpec: 'RSA_3072', keyUsage: 'SIGN_VERIFY' })] },
    ],
  },
  'aws-cloudwatch-log-groups-encrypted-with-retention': {
    bad: [
      { what: 'a bare log group', resources: () => [craft(LOG_GROUP, 'app', { name: '/platform/app' })], message: /has no kmsKeyId .* and no retentionInDays/ },
      { what: 'RDS exports into a group the program does not declare', resources: () => [craft(RDS, 'db', { ...goodRds, identifier: 'pk-db', enabledCloudwatchLogsExports: ['postgresql'] })], message: /writes logs to \/aws\/rds\/instance\/pk-db\/postgresql, which the program does not declare/ },
      { what: 'RDS exports without an identifier', resources: () => [craft(RDS, 'db', { ...goodRds, enabledCloudwatchLogsExports: ['postgresql'] })], message: /sets no identifier/ },
      { what: 'EKS logs created before its group', resources: () => [craft(LOG_GROUP, 'cp', goodLogGroup('/aws/eks/pk/cluster')), craft(EKS, 'cluster', { name: 'pk', enabledClusterLogTypes: ['audit'] })], message: /does not depend on its log group \/aws\/eks\/pk\/cluster/ },
    ],
    good: [
      {
        what: 'declared, encrypted, kept, and waited for',
        resources: () => {
          const group = craft(LOG_GROUP, 'pg', goodLogGroup('/aws/rds/instance/pk-db/postgresql'));
          const cp = craft(LOG_GROUP, 'cp', goodLogGroup('/aws/eks/pk/cluster'));
          return [group, cp, craft(RDS, 'db', { ...goodRds, identifier: 'pk-db', enabledCloudwatchLogsExports: ['postgresql'] }, { dependsOn: [group] }), craft(EKS, 'cluster', { name: 'pk', enabledClusterLogTypes: ['audit'] }, { dependsOn: [cp] })];
        },
      },
    ],
  },
  'aws-force-destroy-disallowed': {
    bad: [
      { what: 'a prod bucket emptied on delete', resources: () => [bucket('uploads', { forceDestroy: true })], message: /sets forceDestroy: true/ },
      { what: 'a prod repository emptied on delete', resources: () => [craft('aws:ecr/repository:Repository', 'app', { forceDelete: true })], message: /sets forceDelete: true/ },
    ],
    good: [
      { what: 'prod keeps its data', resources: () => [bucket('uploads', { forceDestroy: false }), craft('aws:ecr/repository:Repository', 'app', {})] },
      { what: 'dev may be torn down', stack: 'dev', resources: () => [bucket('uploads', { forceDestroy: true }), craft('aws:ecr/repository:Repository', 'app', { forceDelete: true })] },
    ],
  },
  'kubernetes-admission-webhook-ordering': {
    bad: [
      { what: 'an Ingress racing the controller', resources: () => [LBC_RELEASE(), craft(INGRESS, 'api', ingressObject())], message: /Ingress 'api' does not wait for the AWS Load Balancer Controller \(lb-controller\)/ },
      { what: 'a ScaledObject racing KEDA', resources: () => [craft(RELEASE, 'keda', { chart: 'keda', version: '2.17.2' }), craft('kubernetes:keda.sh/v1alpha1:ScaledObject', 'worker', {})], message: /ScaledObject 'worker' does not wait for the KEDA/ },
      { what: 'a chart installed beside the controller', resources: () => [LBC_RELEASE(), craft(RELEASE, 'grafana', { chart: 'grafana', version: '8.0.0' })], message: /Release 'grafana' does not wait for the AWS Load Balancer Controller/ },
      { what: 'an Ingress in a stack without the controller', resources: () => [craft(INGRESS, 'api', ingressObject())], message: /needs the AWS Load Balancer Controller, which this stack does not install/ },
    ],
    good: [
      { what: 'waiting through dependsOn', resources: () => { const lbc = LBC_RELEASE(); return [lbc, craft(INGRESS, 'api', ingressObject(), { dependsOn: [lbc] }), craft(RELEASE, 'grafana', { chart: 'grafana', version: '8.0.0' }, { dependsOn: [lbc] })]; } },
      { what: 'waiting through a parent component', resources: () => { const keda = craft(RELEASE, 'keda', { chart: 'keda', version: '2.17.2' }); const parent = craft('platform:index:Workloads', 'workloads', {}, { dependsOn: [keda] }); return [keda, parent, craft('kubernetes:keda.sh/v1alpha1:ScaledObject', 'worker', {}, { parent })]; } },
      { what: 'what the controller itself waits for', resources: () => { const crds = craft(RELEASE, 'cert-manager', { chart: 'cert-manager', version: '1.15.0' }); return [crds, craft(RELEASE, 'lb-controller', { chart: 'aws-load-balancer-controller', version: '1.13.4' }, { dependsOn: [crds] })]; } },
    ],
  },
};
