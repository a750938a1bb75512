/**
 * Queries over a captured stack, and the properties both stacks must have. Each stack's
 * test file captures once (capture is once per module registry) and calls
 * `describeFoundation` with it, then adds its own stack-specific expectations.
 */
import { REQUIRED_TAG_KEYS } from '../../platform/tags';
import { redactSecrets } from '../../tools/offline/capture';
import { createMocks } from '../../tools/offline/mocks';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';

export type Inputs = Record<string, unknown>;

export function ofType(s: CapturedStack, type: string): CapturedResource[] {
  return s.resources.filter((r) => r.type === type);
}

export function one(s: CapturedStack, type: string, name?: string): CapturedResource {
  const found = ofType(s, type).filter((r) => name === undefined || r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${name}` : ''}, found ${found.length}`);
  return found[0] as CapturedResource;
}

/** Resources whose inputs reference `target` (by id or name) under `key`. */
export function attachedTo(s: CapturedStack, type: string, key: string, target: CapturedResource): CapturedResource[] {
  return ofType(s, type).filter((r) => (r.propertyDependencies?.[key] ?? []).includes(target.urn));
}

/** The resource with this URN. */
export function byUrn(s: CapturedStack, urn: string): CapturedResource {
  const r = s.resources.find((x) => x.urn === urn);
  if (!r) throw new Error(`no resource ${urn}`);
  return r;
}

/**
 * Whether `from` waits for `to` on create (and `to` outlives it on destroy): through
 * dependsOn, an input, or a parent, transitively, as the engine orders steps.
 */
export function waitsFor(s: CapturedStack, from: CapturedResource, to: CapturedResource): boolean {
  const seen = new Set<string>();
  const queue = [from.urn];
  while (queue.length > 0) {
    const urn = queue.shift() as string;
    const r = s.resources.find((x) => x.urn === urn);
    if (!r) continue;
    for (const next of [...r.dependencies, ...Object.values(r.propertyDependencies ?? {}).flat(), ...(r.parent ? [r.parent] : [])]) {
      if (next === to.urn) return true;
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}

export function parsePolicy(doc: unknown): { Statement: { Effect: string; Action: string | string[]; Resource?: string | string[]; Principal?: unknown; Condition?: Record<string, Record<string, unknown>> }[] } {
  return JSON.parse(String(doc)) as ReturnType<typeof parsePolicy>;
}

export const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The plaintext the mocks generate for a RandomPassword, to prove it never leaks. */
export function mockedPassword(name: string, length: number): string {
  const mocks = createMocks({ region: 'eu-west-1' });
  const res = mocks.newResource({ type: 'random:index/randomPassword:RandomPassword', name, inputs: { length }, custom: true });
  if (res instanceof Promise) throw new Error('the shared mocks answer synchronously');
  return String(res.state.result);
}

export function describeFoundation(get: () => CapturedStack): void {
  describe('tags', () => {
    it('gives every AWS resource the one tagged provider, whose default tags carry the required keys', () => {
      const s = get();
      const provider = one(s, 'pulumi:providers:aws');
      const tags = (JSON.parse(String(provider.inputs.defaultTags)) as { tags: Record<string, string> }).tags;
      for (const key of REQUIRED_TAG_KEYS) expect(tags[key]).toEqual(expect.stringMatching(/\S/));
      expect(tags.stack).toBe(s.stack);
      const awsResources = s.resources.filter((r) => r.custom && r.type.startsWith('aws:'));
      expect(awsResources.length).toBeGreaterThan(50);
      for (const r of awsResources) expect({ urn: r.urn, provider: r.provider?.split('::').slice(0, -1).join('::') }).toEqual({ urn: r.urn, provider: provider.urn });
      // Remote components inherit it through `providers`, so their hidden children are tagged too.
      expect(s.resources.filter((r) => r.type === 'awsx:ec2:Vpc' || r.type === 'eks:index:Cluster').length).toBe(2);
    });
  });

  describe('database', () => {
    it('is private, encrypted with its key, TLS-only, backed up, with Performance Insights and a secret password', () => {
      const s = get();
      const db = one(s, 'aws:rds/instance:Instance');
      expect(db.inputs).toMatchObject({ engine: 'postgres', publiclyAccessible: false, storageEncrypted: true, performanceInsightsEnabled: true });
      expect(db.inputs.kmsKeyId).toEqual(expect.stringMatching(/^arn:aws:kms:/));
      expect(db.inputs.backupRetentionPeriod).toBeGreaterThanOrEqual(1);
      expect(db.secretPaths).toContain('password');
      const pg = one(s, 'aws:rds/parameterGroup:ParameterGroup');
      expect(pg.inputs.parameters).toEqual(expect.arrayContaining([{ name: 'rds.force_ssl', value: '1' }]));
      expect(db.propertyDependencies?.parameterGroupName).toEqual([pg.urn]);
    });

    it('admits PostgreSQL only from the EKS cluster security group', () => {
      const s = get();
      const db = one(s, 'aws:rds/instance:Instance');
      const sgUrn = db.propertyDependencies?.vpcSecurityGroupIds?.[0] ?? '';
      const sg = s.resources.find((r) => r.urn === sgUrn) as CapturedResource;
      const rules = attachedTo(s, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'securityGroupId', sg);
      expect(rules).toHaveLength(1);
      expect(rules[0]?.inputs).toMatchObject({ fromPort: 5432, toPort: 5432, ipProtocol: 'tcp', referencedSecurityGroupId: expect.stringMatching(/^sg-/) });
      expect(rules[0]?.inputs.cidrIpv4).toBeUndefined();
      expect(rules[0]?.propertyDependencies?.referencedSecurityGroupId).toEqual([one(s, 'eks:index:Cluster').urn]);
    });
  });

  describe('cache', () => {
    it('is a replication group with noeviction, TLS required, encryption at rest and a secret auth token', () => {
      const s = get();
      const rg = one(s, 'aws:elasticache/replicationGroup:ReplicationGroup');
      expect(rg.inputs).toMatchObject({ transitEncryptionEnabled: true, transitEncryptionMode: 'required', atRestEncryptionEnabled: true });
      expect(rg.inputs.kmsKeyId).toEqual(expect.stringMatching(/^arn:aws:kms:/));
      expect(rg.secretPaths).toContain('authToken');
      expect(one(s, 'aws:elasticache/parameterGroup:ParameterGroup').inputs.parameters).toEqual([{ name: 'maxmemory-policy', value: 'noeviction' }]);
    });
  });

  describe('storage', () => {
    it('creates uploads, results and loki-chunks buckets, each private, SSE-KMS, versioned, expiring and TLS-only', () => {
      const s = get();
      const storage = one(s, 'platform-kit:storage:Storage');
      const buckets = ofType(s, 'aws:s3/bucket:Bucket').filter((b) => b.parent === storage.urn);
      expect(buckets.map((b) => b.name).sort()).toEqual(['storage-loki-chunks', 'storage-results', 'storage-uploads']);
      for (const bucket of buckets) {
        const child = (type: string) => {
          const found = attachedTo(s, type, 'bucket', bucket);
          expect(found).toHaveLength(1);
          return (found[0] as CapturedResource).inputs;
        };
        expect(child('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock')).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
        expect(child('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration')).toMatchObject({
          rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: expect.stringMatching(/^arn:aws:kms:/) }, bucketKeyEnabled: true }],
        });
        expect(child('aws:s3/bucketVersioning:BucketVersioning')).toMatchObject({ versioningConfiguration: { status: 'Enabled' } });
        const rules = child('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration').rules as Inputs[];
        expect(rules.some((r) => (r.expiration as Inputs | undefined)?.days !== undefined)).toBe(true);
        expect(rules.some((r) => r.abortIncompleteMultipartUpload !== undefined)).toBe(true);
        const policy = parsePolicy(child('aws:s3/bucketPolicy:BucketPolicy').policy);
        expect(policy.Statement).toEqual(expect.arrayContaining([expect.objectContaining({ Effect: 'Deny', Principal: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]));
      }
    });
  });

  describe('registry', () => {
    it('has immutable tags, scan on push, KMS encryption and a lifecycle policy', () => {
      const s = get();
      const repo = one(s, 'aws:ecr/repository:Repository');
      expect(repo.inputs).toMatchObject({ imageTagMutability: 'IMMUTABLE', imageScanningConfiguration: { scanOnPush: true }, encryptionConfigurations: [{ encryptionType: 'KMS' }] });
      const lifecycle = one(s, 'aws:ecr/lifecyclePolicy:LifecyclePolicy');
      expect((JSON.parse(String(lifecycle.inputs.policy)) as { rules: unknown[] }).rules).toHaveLength(2);
    });
  });

  describe('cluster', () => {
    it('encrypts secrets with KMS, logs audit to CloudWatch, keeps the private endpoint and never opens the public one to the internet', () => {
      const s = get();
      const cluster = one(s, 'eks:index:Cluster');
      expect(cluster.inputs).toMatchObject({ endpointPrivateAccess: true, authenticationMode: 'API', skipDefaultNodeGroup: true, nodeAssociatePublicIpAddress: false });
      expect(cluster.inputs.encryptionConfigKeyArn).toEqual(expect.stringMatching(/^arn:aws:kms:/));
      expect(cluster.inputs.enabledClusterLogTypes).toEqual(expect.arrayContaining(['audit', 'api', 'authenticator']));
      if (cluster.inputs.endpointPublicAccess === true) {
        const cidrs = cluster.inputs.publicAccessCidrs as string[];
        expect(cidrs.length).toBeGreaterThan(0);
        for (const c of cidrs) expect(c).not.toMatch(/\/0$/);
      }
      const logGroup = one(s, 'aws:cloudwatch/logGroup:LogGroup', 'cluster-control-plane-logs');
      expect(logGroup.inputs).toMatchObject({ name: `/aws/eks/${String(cluster.inputs.name)}/cluster`, kmsKeyId: expect.stringMatching(/^arn:aws:kms:/) });
      expect(cluster.dependencies).toContain(logGroup.urn);
    });

    it('runs every managed node group in the private subnets with an IMDSv2-only launch template', () => {
      const s = get();
      const privateSubnets = s.outputs.privateSubnetIds as string[];
      const publicSubnets = s.outputs.publicSubnetIds as string[];
      const groups = ofType(s, 'eks:index:ManagedNodeGroup');
      expect(groups.length).toBeGreaterThan(0);
      for (const g of groups) {
        expect(g.inputs.subnetIds).toEqual(privateSubnets);
        for (const id of g.inputs.subnetIds as string[]) expect(publicSubnets).not.toContain(id);
        const ltUrn = g.propertyDependencies?.launchTemplate?.[0];
        const lt = s.resources.find((r) => r.urn === ltUrn) as CapturedResource;
        expect(lt.type).toBe('aws:ec2/launchTemplate:LaunchTemplate');
        expect(lt.inputs.metadataOptions).toMatchObject({ httpTokens: 'required', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' });
        expect(lt.inputs.blockDeviceMappings).toEqual([expect.objectContaining({ ebs: expect.objectContaining({ encrypted: 'true' }) })]);
      }
    });

    it('installs the managed add-ons, EBS CSI and VPC CNI with IRSA roles, coredns and EBS CSI after the nodes', () => {
      const s = get();
      const addons = Object.fromEntries(ofType(s, 'aws:eks/addon:Addon').map((a) => [a.inputs.addonName as string, a]));
      expect(Object.keys(addons).sort()).toEqual(['aws-ebs-csi-driver', 'coredns', 'kube-proxy', 'vpc-cni']);
      expect(addons['aws-ebs-csi-driver']?.inputs.serviceAccountRoleArn).toEqual(expect.stringMatching(/^arn:aws:iam::/));
      expect(addons['vpc-cni']?.inputs.serviceAccountRoleArn).toEqual(expect.stringMatching(/^arn:aws:iam::/));
      // NetworkPolicies are only enforced when the VPC CNI runs its policy agent.
      expect(JSON.parse(String(addons['vpc-cni']?.inputs.configurationValues))).toEqual({ enableNetworkPolicy: 'true' });
      for (const g of ofType(s, 'eks:index:ManagedNodeGroup')) {
        expect(addons.coredns?.dependencies).toContain(g.urn);
        expect(addons['aws-ebs-csi-driver']?.dependencies).toContain(g.urn);
      }
    });

    it('builds the Kubernetes provider from a kubeconfig without credentials (pulumi-eks#764)', () => {
      const s = get();
      const kubeconfig = JSON.parse(String(one(s, 'pulumi:providers:kubernetes').inputs.kubeconfig)) as { users: { user: Inputs }[] };
      const user = kubeconfig.users[0]?.user as { exec: { command: string; args: string[] } } & Inputs;
      expect(user.token).toBeUndefined();
      expect(user.exec.command).toBe('aws');
      expect(user.exec.args).toEqual(['eks', 'get-token', '--cluster-name', s.outputs.clusterName, '--region', s.outputs.region, '--output', 'json']);
      expect(JSON.stringify(kubeconfig)).not.toMatch(/AWS_PROFILE|token"\s*:/);
    });

    it('installs the LB controller, metrics-server, KEDA and the cluster autoscaler from pinned charts, the controller with an IRSA role', () => {
      const s = get();
      const releases = Object.fromEntries(ofType(s, 'kubernetes:helm.sh/v3:Release').filter((r) => r.urn.includes('platform-kit:cluster:Cluster$')).map((r) => [r.inputs.chart as string, r.inputs]));
      expect(Object.keys(releases).sort()).toEqual(['aws-load-balancer-controller', 'cluster-autoscaler', 'keda', 'metrics-server']);
      for (const r of Object.values(releases)) expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
      const lbc = releases['aws-load-balancer-controller'] as { values: { serviceAccount: { annotations: Record<string, string> }; clusterName: string } };
      expect(lbc.values.clusterName).toBe(s.outputs.clusterName);
      expect(lbc.values.serviceAccount.annotations['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/cluster-lb-controller/);
    });
  });

  describe('network', () => {
    it('keeps the S3 gateway endpoint so bucket traffic skips the NAT', () => {
      const s = get();
      expect(one(s, 'awsx:ec2:Vpc').inputs.vpcEndpointSpecs).toEqual([expect.objectContaining({ vpcEndpointType: 'Gateway', serviceName: expect.stringMatching(/\.s3$/) })]);
    });

    it('opens no security group to the internet', () => {
      const s = get();
      for (const rule of ofType(s, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule')) {
        expect(rule.inputs.cidrIpv4).not.toBe('0.0.0.0/0');
        expect(rule.inputs.cidrIpv6).toBeUndefined();
      }
      for (const sg of ofType(s, 'aws:ec2/securityGroup:SecurityGroup')) expect(sg.inputs.ingress).toBeUndefined();
    });
  });

  describe('identity', () => {
    const policyOf = (s: CapturedStack, name: string) => parsePolicy(one(s, 'aws:iam/rolePolicy:RolePolicy', `${name}-policy`).inputs.policy);

    it('grants the api and worker only the object actions the file service uses, under the shared prefix, deletes included but never of versions', () => {
      const s = get();
      const prefix = String(s.outputs.objectPrefix);
      const uploads = `arn:aws:s3:::${String(s.outputs.uploadsBucket)}`;
      const results = `arn:aws:s3:::${String(s.outputs.resultsBucket)}`;
      const objectGrants = (name: string) =>
        Object.fromEntries(
          policyOf(s, name)
            .Statement.filter((st) => list(st.Action).some((a) => a.endsWith('Object') || a === 's3:AbortMultipartUpload'))
            .map((st) => [String(st.Resource), list(st.Action).sort()]),
        );
      // The api deletes an upload whose row could not be written and what an owner removes; the worker an output a re-run replaced.
      expect(objectGrants('identity-api')).toEqual({
        [`${uploads}/${prefix}*`]: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:PutObject'],
        [`${results}/${prefix}*`]: ['s3:DeleteObject', 's3:GetObject'],
      });
      expect(objectGrants('identity-worker')).toEqual({
        [`${uploads}/${prefix}*`]: ['s3:GetObject'],
        [`${results}/${prefix}*`]: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:PutObject'],
      });
      for (const name of ['identity-api', 'identity-worker']) {
        const statements = policyOf(s, name).Statement;
        for (const st of statements) {
          // Buckets are versioned: a delete leaves a noncurrent version only the lifecycle removes.
          expect(list(st.Action)).not.toContain('s3:DeleteObjectVersion');
          expect(list(st.Resource)).not.toContain('*');
          expect(list(st.Action).some((a) => a.endsWith('*'))).toBe(false);
        }
        expect(statements.find((st) => list(st.Action).includes('kms:Decrypt'))?.Condition).toEqual({ StringEquals: { 'kms:ViaService': `s3.${String(s.outputs.region)}.amazonaws.com` } });
      }
    });

    it('lets each IRSA role be assumed by exactly one service account, for STS only', () => {
      const s = get();
      const irsa = ofType(s, 'aws:iam/role:Role').filter((r) => String(r.inputs.assumeRolePolicy).includes('AssumeRoleWithWebIdentity'));
      // Loki's role exists where it stores in S3 (tests/observability checks it).
      expect(irsa.map((r) => r.name).filter((n) => n !== 'observability-loki').sort()).toEqual(['cluster-cluster-autoscaler', 'cluster-ebs-csi', 'cluster-lb-controller', 'cluster-vpc-cni', 'identity-api', 'identity-worker']);
      for (const role of irsa) {
        const [statement] = parsePolicy(role.inputs.assumeRolePolicy).Statement;
        const conditions = Object.entries(statement?.Condition?.StringEquals ?? {});
        expect(conditions.find(([k]) => k.endsWith(':sub'))?.[1]).toMatch(/^system:serviceaccount:[a-z0-9-]+:[a-z0-9-]+$/);
        expect(conditions.find(([k]) => k.endsWith(':aud'))?.[1]).toBe('sts.amazonaws.com');
      }
    });

    it('allows no write action on Resource "*" in any inline policy', () => {
      const s = get();
      for (const p of ofType(s, 'aws:iam/rolePolicy:RolePolicy')) {
        for (const st of parsePolicy(p.inputs.policy).Statement) {
          if (st.Effect !== 'Allow' || !list(st.Resource).includes('*')) continue;
          for (const action of list(st.Action)) expect({ policy: p.name, action }).toEqual({ policy: p.name, action: expect.stringMatching(/:(Describe|List|Get)[A-Za-z]*$/) });
        }
      }
    });
  });

  describe('secrets', () => {
    it('exports connection URLs only as secrets and no plaintext password or token anywhere outside a secret', () => {
      const s = get();
      expect(s.outputs.databaseUrl).toEqual({ secret: true });
      expect(s.outputs.redisUrl).toEqual({ secret: true });
      const plaintexts = [mockedPassword('database-master', 32), mockedPassword('cache-auth', 64)];
      const outputs = JSON.stringify(s.outputs);
      const visibleInputs = JSON.stringify(s.resources.map((r) => redactSecrets(r.inputs, r.secretPaths)));
      for (const secret of plaintexts) {
        expect(outputs).not.toContain(secret);
        expect(visibleInputs).not.toContain(secret);
      }
      // And the secrets did reach their resources (the check above is not vacuous).
      expect(JSON.stringify(one(s, 'aws:rds/instance:Instance').inputs)).toContain(plaintexts[0]);
    });
  });
}
