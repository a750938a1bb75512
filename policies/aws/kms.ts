import { type PlatformPolicy, describe, resourcePolicy, str } from '../lib/policy';

const KEY = 'aws:kms/key:Key';
const REPLICA_KEY = 'aws:kms/replicaKey:ReplicaKey';

export const kmsPolicies: PlatformPolicy[] = [
  resourcePolicy({
    name: 'aws-kms-key-rotation-enabled',
    description:
      'Symmetric customer-managed KMS keys rotate their key material (enableKeyRotation: true; the default is false). Asymmetric and HMAC keys cannot rotate and are exempt.',
    control: { framework: 'AWS FSBP', id: 'KMS.4', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/kms-controls.html#kms-4' },
    concern: 'security',
    severity: 'medium',
    remediation: 'Set enableKeyRotation: true (and rotationPeriodInDays if a year is too long).',
    types: [KEY, REPLICA_KEY],
    validate: (props, args, report) => {
      if (args.type === REPLICA_KEY) return; // rotation is a property of the primary key
      const spec = str(props.customerMasterKeySpec) ?? 'SYMMETRIC_DEFAULT';
      const usage = str(props.keyUsage) ?? 'ENCRYPT_DECRYPT';
      if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT') return;
      if (props.enableKeyRotation !== true) report(`${describe(args)} does not rotate its key material (enableKeyRotation is ${props.enableKeyRotation === false ? 'false' : 'unset, i.e. false'}).`);
    },
  }),
];
