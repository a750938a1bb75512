import { type PlatformPolicy, describe, resourcePolicy } from '../lib/policy';
import { BUCKET_TYPES } from './s3';

const REPOSITORY = 'aws:ecr/repository:Repository';

/** The input that makes a delete empty the store first. */
const FORCE_INPUT: Record<string, string> = {
  ...Object.fromEntries(BUCKET_TYPES.map((t) => [t, 'forceDestroy'])),
  [REPOSITORY]: 'forceDelete',
};

export const teardownPolicies: PlatformPolicy[] = [
  resourcePolicy<{ allowForceDestroy: boolean }>({
    name: 'aws-force-destroy-disallowed',
    description:
      'S3 buckets (forceDestroy) and ECR repositories (forceDelete) are not emptied on delete where `allowForceDestroy` is false (prod): a `pulumi destroy`, or a change that replaces the bucket, would delete every object or image without a prompt. Disposable stacks (dev) allow it so `pulumi destroy` does not stop on non-empty stores.',
    control: { framework: 'Platform Kit', id: 'data-retention' },
    concern: 'resilience',
    severity: 'high',
    remediation: 'Set platform-kit:teardown.forceDestroy: false in the stack file (forceDestroy / forceDelete false); empty a store by hand, deliberately, before deleting it.',
    types: Object.keys(FORCE_INPUT),
    config: {
      schema: { properties: { allowForceDestroy: { type: 'boolean', default: false, description: 'Whether stores may be emptied by a delete (disposable stacks).' } } },
      perStack: { dev: { allowForceDestroy: true }, prod: { allowForceDestroy: false } },
    },
    validate: (props, args, report) => {
      const input = FORCE_INPUT[args.type] ?? 'forceDestroy';
      if (props[input] === true && !args.config.allowForceDestroy) report(`${describe(args)} sets ${input}: true, so deleting it deletes its contents; this stack keeps data on destroy.`);
    },
  }),
];
