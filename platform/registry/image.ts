import * as path from 'node:path';
import * as aws from '@pulumi/aws';
import * as dockerBuild from '@pulumi/docker-build';
import * as pulumi from '@pulumi/pulumi';
import { buildContextTag } from './build-context';

export type ImagePlatform = 'linux/amd64' | 'linux/arm64';

export interface ServiceImageArgs {
  /** ECR repository URL (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`) to push to. Required. */
  repositoryUrl: pulumi.Input<string>;
  /** Directory holding the Dockerfile and everything it copies (the repository root). Required. */
  contextDir: string;
  /** Dockerfile path relative to `contextDir`. Default `Dockerfile`. */
  dockerfile?: string;
  /** CPU architectures to build for: those of the nodes that run the image. Default `[linux/amd64]`. */
  platforms?: ImagePlatform[];
}

function relativeToCwd(target: string): string {
  return path.relative(process.cwd(), target) || '.';
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateServiceImageArgs(args: ServiceImageArgs): string[] {
  const problems: string[] = [];
  if (!path.isAbsolute(args.contextDir)) problems.push(`contextDir ${args.contextDir} must be an absolute path`);
  const platforms = args.platforms ?? ['linux/amd64'];
  if (platforms.length === 0) problems.push('platforms must name at least one architecture');
  if (new Set(platforms).size !== platforms.length) problems.push('platforms repeats an architecture');
  return problems;
}

/**
 * The service image, built from this repository with BuildKit (@pulumi/docker-build) and
 * pushed to the stack's ECR repository under a tag derived from its sources (see
 * `buildContextTag`). The repository's tags are immutable, so the tag is what the image
 * is; workloads still pin `imageRef`, the digest the push returned, which no tag can
 * move. Unchanged sources keep the tag and the build's inputs, so a rerun builds and
 * pushes nothing. SOURCE_DATE_EPOCH pins the image's timestamps, so sources built before
 * (a revert) normally rebuild to the same digest, which ECR accepts under the existing tag.
 */
export class ServiceImage extends pulumi.ComponentResource {
  /** `<repository>@sha256:…`: what a pod spec references. */
  public readonly imageRef: pulumi.Output<string>;
  public readonly digest: pulumi.Output<string>;
  /** The content tag the image was pushed under. */
  public readonly tag: string;
  public readonly image: dockerBuild.Image;

  constructor(name: string, args: ServiceImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:registry:ServiceImage', name, {}, opts);
    const problems = validateServiceImageArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`ServiceImage ${name}: ${problems.join('; ')}`, this);

    const dockerfile = args.dockerfile ?? 'Dockerfile';
    const tag = buildContextTag(args.contextDir, dockerfile);
    const repositoryUrl = pulumi.output(args.repositoryUrl);
    const registry = repositoryUrl.apply((url) => url.split('/')[0] ?? url);
    const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: registry.apply((host) => host.split('.')[0] ?? host) }, { parent: this });

    const image = new dockerBuild.Image(
      `${name}-build`,
      {
        // Relative to the project directory Pulumi runs in, so state does not record where a checkout lives.
        context: { location: relativeToCwd(args.contextDir) },
        dockerfile: { location: relativeToCwd(path.join(args.contextDir, dockerfile)) },
        platforms: (args.platforms ?? ['linux/amd64']).map((p) => (p === 'linux/arm64' ? dockerBuild.Platform.Linux_arm64 : dockerBuild.Platform.Linux_amd64)),
        push: true,
        tags: [pulumi.interpolate`${repositoryUrl}:${tag}`],
        // Image config and history times from a fixed epoch instead of the build's clock.
        buildArgs: { SOURCE_DATE_EPOCH: '0' },
        registries: [{ address: registry, username: auth.userName, password: pulumi.secret(auth.password) }],
      },
      { parent: this },
    );

    this.image = image;
    this.tag = tag;
    this.digest = image.digest;
    this.imageRef = pulumi.interpolate`${repositoryUrl}@${image.digest}`;
    this.registerOutputs({ imageRef: this.imageRef, digest: this.digest, tag });
  }
}
