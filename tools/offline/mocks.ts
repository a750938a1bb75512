/**
 * The one set of Pulumi runtime mocks shared by `npm run plan`, `npm run policy` and the
 * infra and policy tests, so that all of them see the same graph.
 *
 * Two kinds of answer:
 * - Remote (multi-language) components (`awsx:ec2:Vpc`, `eks:index:Cluster`,
 *   `eks:index:ManagedNodeGroup`) arrive as one registration whose children never run
 *   here, so their outputs are invented in the shapes the real components return
 *   (subnet ids per AZ, a kubeconfig, the OIDC issuer, the EKS cluster security group).
 *   Echoing inputs would leave them undefined, and an `apply` on them would crash.
 * - Plain resources echo their inputs plus the attributes a provider computes and the
 *   program reads (ids, ARNs, endpoints, a key id, a launch template version).
 *
 * Every value is derived from the resource's type and name, never from a clock or a
 * random source, so two runs print the same graph. Invokes the program does not make
 * fail loudly instead of answering `{}`, which would surface later as an undefined.
 */
import { createHash } from 'node:crypto';
import type * as pulumi from '@pulumi/pulumi';

export interface MockEnvironment {
  /** Region the faked ARNs, endpoints and zones are in. */
  region: string;
  /** Account id of the faked caller. Default `123456789012`. */
  accountId?: string;
}

/** The partition the mocks pretend to be in. The program must ask, never assume it. */
export const MOCK_PARTITION = 'aws';
export const MOCK_ACCOUNT_ID = '123456789012';

function hex(seed: string, length: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, length);
}

/** `aws:rds/instance:Instance` → `rds`. */
function serviceOf(type: string): string {
  const module = type.split(':')[1] ?? 'unknown';
  return module.split('/')[0] ?? module;
}

type Inputs = Record<string, unknown>;

function str(v: unknown, fallback: string): string {
  return typeof v === 'string' && v.length > 0 ? v : fallback;
}

/** The name the Kubernetes provider would give an object without `metadata.name`: its logical name and a random suffix, here derived from both. */
export function kubernetesAutoName(type: string, logicalName: string): string {
  return `${logicalName}-${hex(`${type}/${logicalName}`, 8)}`;
}

export function createMocks(env: MockEnvironment): pulumi.runtime.Mocks {
  const region = env.region;
  const account = env.accountId ?? MOCK_ACCOUNT_ID;
  const arn = (service: string, resource: string, scoped = true) =>
    `arn:${MOCK_PARTITION}:${service}:${scoped ? region : ''}:${scoped ? account : ''}:${resource}`;

  /** CIDR per subnet id of the faked VPCs, so a subnet lookup answers with an address inside its VPC. */
  const subnetCidrs = new Map<string, string>();

  /** Private subnets from the start of the block, public ones after them, at the masks the program asked for. */
  function layOutSubnets(vpcCidr: string, specs: Inputs[], privateIds: string[], publicIds: string[]): void {
    const [base = '10.0.0.0', bits = '16'] = vpcCidr.split('/');
    const start = base.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const maskOf = (type: string, fallback: number) => Number(specs.find((spec) => spec.type === type)?.cidrMask ?? fallback);
    const toCidr = (address: number, mask: number) => `${[24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join('.')}/${mask}`;
    let next = start;
    for (const [ids, mask] of [[privateIds, maskOf('Private', Number(bits) + 3)], [publicIds, maskOf('Public', Number(bits) + 6)]] as const) {
      for (const id of ids) {
        subnetCidrs.set(id, toCidr(next, mask));
        next += 2 ** (32 - mask);
      }
    }
  }

  function remoteComponent(type: string, name: string, inputs: Inputs): Inputs | undefined {
    switch (type) {
      case 'awsx:ec2:Vpc': {
        const azs = Array.isArray(inputs.availabilityZoneNames) ? (inputs.availabilityZoneNames as string[]) : [`${region}a`, `${region}b`];
        const privateSubnetIds = azs.map((az) => `subnet-${hex(`${name}/private/${az}`, 17)}`);
        const publicSubnetIds = azs.map((az) => `subnet-${hex(`${name}/public/${az}`, 17)}`);
        layOutSubnets(str(inputs.cidrBlock, '10.0.0.0/16'), (inputs.subnetSpecs ?? []) as Inputs[], privateSubnetIds, publicSubnetIds);
        return { vpcId: `vpc-${hex(name, 17)}`, privateSubnetIds, publicSubnetIds, isolatedSubnetIds: [] };
      }
      case 'eks:index:Cluster': {
        const clusterName = str(inputs.name, name);
        const oidcId = hex(`${name}/oidc`, 32).toUpperCase();
        const server = `https://${hex(`${name}/endpoint`, 32).toUpperCase()}.gr7.${region}.eks.amazonaws.com`;
        const ca = Buffer.from(`-----BEGIN CERTIFICATE-----\nmock CA of ${clusterName}\n-----END CERTIFICATE-----\n`).toString('base64');
        const kubeconfig = {
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'kubernetes', cluster: { server, 'certificate-authority-data': ca } }],
          contexts: [{ name: 'aws', context: { cluster: 'kubernetes', user: 'aws' } }],
          'current-context': 'aws',
          users: [{ name: 'aws', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'aws', args: ['eks', 'get-token', '--cluster-name', clusterName] } } }],
        };
        const issuer = `oidc.eks.${region}.amazonaws.com/id/${oidcId}`;
        return {
          kubeconfig,
          kubeconfigJson: JSON.stringify(kubeconfig),
          clusterSecurityGroupId: `sg-${hex(`${name}/eks-cluster-sg`, 17)}`,
          nodeSecurityGroupId: `sg-${hex(`${name}/eks-cluster-sg`, 17)}`,
          oidcIssuer: issuer,
          oidcProviderUrl: `https://${issuer}`,
          // The program creates the OIDC provider itself (createOidcProvider: false).
          oidcProviderArn: '',
          clusterIngressRuleId: '',
          defaultNodeGroupAsgName: '',
          fargateProfileId: '',
          fargateProfileStatus: '',
          autoModeNodeRoleName: '',
        };
      }
      case 'eks:index:ManagedNodeGroup':
        return { placementGroupName: '' };
      default:
        return undefined;
    }
  }

  /** Attributes a provider computes that the program reads back. */
  function computed(type: string, name: string, inputs: Inputs): { id: string; extra: Inputs } {
    const id = `${name}-${hex(`${type}/${name}`, 8)}`;
    switch (type) {
      case 'aws:kms/key:Key': {
        const keyId = `${hex(name, 8)}-${hex(`${name}1`, 4)}-${hex(`${name}2`, 4)}-${hex(`${name}3`, 4)}-${hex(`${name}4`, 12)}`;
        return { id: keyId, extra: { keyId, arn: arn('kms', `key/${keyId}`) } };
      }
      case 'aws:kms/alias:Alias':
        return { id: str(inputs.name, id), extra: { arn: arn('kms', str(inputs.name, id)) } };
      case 'aws:s3/bucket:Bucket': {
        const bucket = str(inputs.bucket, `${str(inputs.bucketPrefix, `${name}-`)}${hex(name, 8)}`);
        return { id: bucket, extra: { bucket, arn: `arn:${MOCK_PARTITION}:s3:::${bucket}`, bucketDomainName: `${bucket}.s3.amazonaws.com`, region } };
      }
      case 'aws:iam/role:Role': {
        const roleName = str(inputs.name, id);
        return { id: roleName, extra: { name: roleName, arn: `arn:${MOCK_PARTITION}:iam::${account}:role/${roleName}`, uniqueId: `AROA${hex(name, 17).toUpperCase()}` } };
      }
      case 'aws:iam/openIdConnectProvider:OpenIdConnectProvider': {
        const url = str(inputs.url, 'https://oidc.invalid').replace(/^https:\/\//, '');
        const providerArn = `arn:${MOCK_PARTITION}:iam::${account}:oidc-provider/${url}`;
        return { id: providerArn, extra: { arn: providerArn } };
      }
      case 'aws:rds/instance:Instance': {
        const address = `${id}.c${hex(account, 11)}.${region}.rds.amazonaws.com`;
        return { id, extra: { address, endpoint: `${address}:${String(inputs.port ?? 5432)}`, arn: arn('rds', `db:${id}`), resourceId: `db-${hex(name, 26).toUpperCase()}` } };
      }
      case 'aws:elasticache/replicationGroup:ReplicationGroup':
        return { id, extra: { primaryEndpointAddress: `master.${id}.${hex(account, 6)}.${region.replace(/-/g, '')}.cache.amazonaws.com`, readerEndpointAddress: `replica.${id}.${hex(account, 6)}.cache.amazonaws.com`, arn: arn('elasticache', `replicationgroup:${id}`) } };
      case 'aws:ecr/repository:Repository': {
        const repoName = str(inputs.name, id);
        return { id: repoName, extra: { repositoryUrl: `${account}.dkr.ecr.${region}.amazonaws.com/${repoName}`, arn: arn('ecr', `repository/${repoName}`), registryId: account } };
      }
      case 'aws:ec2/launchTemplate:LaunchTemplate':
        return { id: `lt-${hex(name, 17)}`, extra: { latestVersion: 1, defaultVersion: 1, arn: arn('ec2', `launch-template/lt-${hex(name, 17)}`) } };
      case 'aws:ec2/securityGroup:SecurityGroup':
        return { id: `sg-${hex(name, 17)}`, extra: { arn: arn('ec2', `security-group/sg-${hex(name, 17)}`) } };
      case 'aws:cloudwatch/logGroup:LogGroup': {
        const logGroupName = str(inputs.name, id);
        return { id: logGroupName, extra: { name: logGroupName, arn: arn('logs', `log-group:${logGroupName}`) } };
      }
      case 'aws:rds/subnetGroup:SubnetGroup':
      case 'aws:rds/parameterGroup:ParameterGroup':
      case 'aws:elasticache/subnetGroup:SubnetGroup':
      case 'aws:elasticache/parameterGroup:ParameterGroup':
        return { id: str(inputs.name, id), extra: { name: str(inputs.name, id), arn: arn(serviceOf(type), id) } };
      case 'aws:acm/certificate:Certificate': {
        const domain = str(inputs.domainName, 'example.invalid');
        return {
          id: arn('acm', `certificate/${hex(name, 36)}`),
          extra: {
            arn: arn('acm', `certificate/${hex(name, 36)}`),
            domainValidationOptions: [
              { domainName: domain, resourceRecordName: `_${hex(`${name}/r`, 32)}.${domain}.`, resourceRecordType: 'CNAME', resourceRecordValue: `_${hex(`${name}/v`, 32)}.acm-validations.aws.` },
            ],
          },
        };
      }
      case 'aws:acm/certificateValidation:CertificateValidation':
        return { id, extra: { certificateArn: inputs.certificateArn } };
      case 'aws:route53/record:Record':
        return { id, extra: { fqdn: str(inputs.name, id).replace(/\.$/, '') } };
      case 'random:index/randomPassword:RandomPassword': {
        const length = typeof inputs.length === 'number' ? inputs.length : 32;
        let result = '';
        for (let i = 0; result.length < length; i++) result += hex(`${name}/${i}`, 64);
        return { id: 'none', extra: { result: result.slice(0, length), bcryptHash: `$2a$10$${hex(name, 53)}` } };
      }
      case 'docker-build:index:Image': {
        // What a push to the registry returns: the manifest digest, and a ref of the first tag pinned to it.
        const digest = `sha256:${hex(`${name}/${JSON.stringify(inputs.tags ?? [])}`, 64)}`;
        const tag = Array.isArray(inputs.tags) && typeof inputs.tags[0] === 'string' ? inputs.tags[0] : '';
        return { id: digest, extra: { digest, ref: tag ? `${tag}@${digest}` : '', contextHash: hex(`${name}/context`, 64) } };
      }
      default:
        if (type.startsWith('kubernetes:') && !type.startsWith('kubernetes:helm.sh/')) return kubernetesObject(type, name, inputs);
        return { id, extra: type.startsWith('aws:') ? { arn: arn(serviceOf(type), id) } : {} };
    }
  }

  /**
   * A Kubernetes object as the provider returns it: auto-named like the provider does
   * (`<logical name>-<8 hex>`) when the program gives no `metadata.name`, and an Ingress
   * with the load balancer address its controller writes into the status.
   */
  function kubernetesObject(type: string, name: string, inputs: Inputs): { id: string; extra: Inputs } {
    const metadata = (inputs.metadata ?? {}) as Inputs;
    const objectName = str(metadata.name, kubernetesAutoName(type, name));
    const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : undefined;
    const extra: Inputs = { metadata: { ...metadata, name: objectName } };
    if (type === 'kubernetes:networking.k8s.io/v1:Ingress') {
      const lbName = str((metadata.annotations as Inputs | undefined)?.['alb.ingress.kubernetes.io/load-balancer-name'], objectName);
      extra.status = { loadBalancer: { ingress: [{ hostname: `${lbName}-${hex(`${name}/alb`, 10)}.${region}.elb.amazonaws.com` }] } };
    }
    return { id: namespace ? `${namespace}/${objectName}` : objectName, extra };
  }

  return {
    newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
      const inputs = (args.inputs ?? {}) as Inputs;
      const remote = remoteComponent(args.type, args.name, inputs);
      if (remote !== undefined) return { id: undefined, state: { ...inputs, ...remote } };
      if (args.type.startsWith('pulumi:providers:')) return { id: `${args.name}-${hex(args.type, 8)}`, state: inputs };
      const { id, extra } = computed(args.type, args.name, inputs);
      return { id, state: { ...inputs, ...extra } };
    },

    call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
      switch (args.token) {
        case 'aws:index/getCallerIdentity:getCallerIdentity':
          return { accountId: account, arn: `arn:${MOCK_PARTITION}:iam::${account}:user/offline-plan`, userId: 'AIDAOFFLINEPLAN', id: account };
        case 'aws:index/getPartition:getPartition':
          return { partition: MOCK_PARTITION, dnsSuffix: 'amazonaws.com', reverseDnsPrefix: 'com.amazonaws', id: MOCK_PARTITION };
        case 'aws:index/getRegion:getRegion':
          return { region, name: region, id: region, endpoint: `ec2.${region}.amazonaws.com`, description: region };
        case 'aws:index/getAvailabilityZones:getAvailabilityZones': {
          const names = ['a', 'b', 'c'].map((s) => `${region}${s}`);
          return { id: region, region, names, zoneIds: names.map((_, i) => `${region.slice(0, 2)}${region.split('-')[1]?.slice(0, 1) ?? ''}1-az${i + 1}`), groupNames: names.map(() => region) };
        }
        case 'aws:ec2/getRouteTable:getRouteTable': {
          const subnetId = str((args.inputs as Inputs).subnetId, 'subnet-unknown');
          const routeTableId = `rtb-${hex(`route-table/${subnetId}`, 17)}`;
          return { id: routeTableId, routeTableId, subnetId, vpcId: 'vpc-unknown', ownerId: account, arn: arn('ec2', `route-table/${routeTableId}`), associations: [], routes: [], tags: {}, propagatingVgws: [] };
        }
        case 'aws:ec2/getSubnet:getSubnet': {
          const subnetId = str((args.inputs as Inputs).id, 'subnet-unknown');
          const cidrBlock = subnetCidrs.get(subnetId);
          if (cidrBlock === undefined) throw new Error(`offline mocks know no subnet ${subnetId}`);
          return { id: subnetId, cidrBlock, vpcId: 'vpc-unknown', availabilityZone: `${region}a`, arn: arn('ec2', `subnet/${subnetId}`), ownerId: account, tags: {} };
        }
        case 'aws:ecr/getAuthorizationToken:getAuthorizationToken': {
          const registryId = str((args.inputs as Inputs).registryId, account);
          return {
            id: registryId,
            registryId,
            userName: 'AWS',
            password: `offline-ecr-token-${hex(registryId, 16)}`,
            authorizationToken: Buffer.from(`AWS:offline-ecr-token-${hex(registryId, 16)}`).toString('base64'),
            proxyEndpoint: `https://${registryId}.dkr.ecr.${region}.amazonaws.com`,
            expiresAt: '2000-01-01T12:00:00Z',
          };
        }
        case 'aws:lb/getHostedZoneId:getHostedZoneId':
          // The canonical zone of ALBs in the region; a stable stand-in, not AWS's real id.
          return { id: `Z${hex(`alb/${region}`, 13).toUpperCase()}`, loadBalancerType: 'application', region };
        default:
          throw new Error(`offline mocks do not answer invoke ${args.token}; add it to tools/offline/mocks.ts`);
      }
    },
  };
}
