import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { awsContext } from '../shared/aws-context';
import { createKmsKey } from '../shared/kms';

export interface RegistryArgs {
  /** Repository name, e.g. `platform-kit/prod/app`. Required. */
  repositoryName: string;
  /** Tagged images kept; older ones expire. Default 50. */
  keepTaggedImages?: number;
  /** Days before untagged images (superseded build layers) expire. Default 7. */
  untaggedExpireDays?: number;
  /** Let `pulumi destroy` delete the repository with its images (disposable stacks only). Default false. */
  forceDelete?: boolean;
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateRegistryArgs(args: RegistryArgs): string[] {
  const problems: string[] = [];
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(args.repositoryName) || args.repositoryName.length > 256) {
    problems.push(`repositoryName ${args.repositoryName} is not a valid ECR repository name`);
  }
  if ((args.keepTaggedImages ?? 50) < 1) problems.push('keepTaggedImages must be at least 1 (0 would expire the running image)');
  if ((args.untaggedExpireDays ?? 7) < 1) problems.push('untaggedExpireDays must be at least 1');
  return problems;
}

/**
 * The ECR repository of the service image: immutable tags (a tag names one image
 * forever, so a rollback redeploys exactly what ran), scan on push, KMS encryption, and
 * a lifecycle policy so storage does not grow without bound.
 */
export class Registry extends pulumi.ComponentResource {
  public readonly repositoryUrl: pulumi.Output<string>;
  public readonly repositoryArn: pulumi.Output<string>;
  public readonly repository: aws.ecr.Repository;

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:registry:Registry', name, {}, opts);
    const problems = validateRegistryArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Registry ${name}: ${problems.join('; ')}`, this);

    const ctx = awsContext(this);
    const { key } = createKmsKey(name, { description: `ECR ${args.repositoryName}`, ctx }, { parent: this });
    const repository = new aws.ecr.Repository(
      `${name}-repository`,
      {
        name: args.repositoryName,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: 'KMS', kmsKey: key.arn }],
        forceDelete: args.forceDelete ?? false,
      },
      { parent: this },
    );
    new aws.ecr.LifecyclePolicy(
      `${name}-lifecycle`,
      {
        repository: repository.name,
        policy: JSON.stringify({
          rules: [
            {
              rulePriority: 1,
              description: `Expire untagged images after ${args.untaggedExpireDays ?? 7} days`,
              selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: args.untaggedExpireDays ?? 7 },
              action: { type: 'expire' },
            },
            {
              // ECR requires the `any` rule to have the lowest precedence (highest number).
              rulePriority: 2,
              description: `Keep the newest ${args.keepTaggedImages ?? 50} images`,
              selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: args.keepTaggedImages ?? 50 },
              action: { type: 'expire' },
            },
          ],
        }),
      },
      { parent: repository },
    );

    this.repository = repository;
    this.repositoryUrl = repository.repositoryUrl;
    this.repositoryArn = repository.arn;
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, repositoryArn: this.repositoryArn });
  }
}
