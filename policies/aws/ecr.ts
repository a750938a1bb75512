import { type PlatformPolicy, at, companionsOf, describe, resourcePolicy, stackPolicy } from '../lib/policy';

const REPOSITORY = 'aws:ecr/repository:Repository';
const LIFECYCLE_POLICY = 'aws:ecr/lifecyclePolicy:LifecyclePolicy';

const fsbp = (id: string) => ({ framework: 'AWS FSBP', id, url: `https://docs.aws.amazon.com/securityhub/latest/userguide/ecr-controls.html#${id.toLowerCase().replace('.', '-')}` });

export const ecrPolicies: PlatformPolicy[] = [
  resourcePolicy({
    name: 'aws-ecr-repository-scan-on-push',
    description: 'ECR repositories scan every pushed image for known vulnerabilities (imageScanningConfiguration.scanOnPush: true; default false).',
    control: fsbp('ECR.1'),
    concern: 'security',
    severity: 'medium',
    remediation: 'Set imageScanningConfiguration: { scanOnPush: true }.',
    types: [REPOSITORY],
    validate: (props, args, report) => {
      if (at(props.imageScanningConfiguration, 'scanOnPush') !== true) report(`${describe(args)} does not scan images on push.`);
    },
  }),
  resourcePolicy({
    name: 'aws-ecr-repository-immutable-tags',
    description: 'ECR repositories make tags immutable (imageTagMutability: IMMUTABLE; default MUTABLE), so a tag deployed to prod always names the image that was scanned and tested.',
    control: fsbp('ECR.2'),
    concern: 'security',
    severity: 'medium',
    remediation: 'Set imageTagMutability: "IMMUTABLE" and tag images by commit SHA.',
    types: [REPOSITORY],
    validate: (props, args, report) => {
      const mutability = props.imageTagMutability;
      if (mutability !== 'IMMUTABLE' && mutability !== 'IMMUTABLE_WITH_EXCLUSION') {
        report(`${describe(args)} has ${typeof mutability === 'string' ? mutability : 'MUTABLE (the default)'} tags; set imageTagMutability: IMMUTABLE.`);
      }
    },
  }),
  stackPolicy({
    name: 'aws-ecr-repository-lifecycle-policy',
    description: 'Every ECR repository has a lifecycle policy, so untagged and old images expire instead of accruing storage cost forever.',
    control: fsbp('ECR.3'),
    concern: 'cost',
    severity: 'low',
    remediation: 'Add an aws.ecr.LifecyclePolicy that expires untagged images after a few days and keeps the last N tagged ones.',
    types: [REPOSITORY, LIFECYCLE_POLICY],
    validate: (resources, _args, report) => {
      for (const repo of resources.filter((r) => r.type === REPOSITORY)) {
        if (companionsOf(repo, resources, [LIFECYCLE_POLICY], 'repository').length === 0) report(`${describe(repo)} has no lifecycle policy.`, repo.urn);
      }
    },
  }),
];
