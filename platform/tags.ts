import * as aws from '@pulumi/aws';
import type * as pulumi from '@pulumi/pulumi';
import { PROJECT, type StackConfig } from './config';

/**
 * Tag keys every taggable AWS resource carries. Policies assert them (issue 4); a key
 * renamed here is a key renamed on every resource, so treat the list as an API.
 */
export const REQUIRED_TAG_KEYS = ['project', 'stack', 'owner', 'cost-centre'] as const;

export type DefaultTags = Record<string, string>;

/** The default tags of a stack: the required four plus the configured extras (which cannot override them). */
export function defaultTagsFor(cfg: StackConfig, stack: string): DefaultTags {
  return { ...cfg.tags.extra, project: PROJECT, stack, owner: cfg.tags.owner, 'cost-centre': cfg.tags.costCentre };
}

/**
 * The one AWS provider of the program. Every component receives it through
 * `providers: { aws }` and every child inherits it through `parent`, so no resource ever
 * falls back to the ambient default provider (which would carry no default tags and
 * could point at another region).
 *
 * How a policy verifies "required tags on every taggable resource", offline and under
 * the CLI alike: a resource's effective tags are its own `tags` merged over its
 * provider's `defaultTags.tags`. Under the CLI, CrossGuard gives `args.provider.props`;
 * offline, `CapturedResource.provider` holds the provider reference (`<urn>::<id>`, as the
 * engine passes it), and the provider's captured inputs hold `defaultTags`. The Pulumi SDK sends nested provider
 * settings JSON-encoded, so `defaultTags` arrives as a JSON string in both worlds: parse
 * it when it is a string. A taggable resource whose provider is not this one fails the check.
 */
export function createAwsProvider(name: string, cfg: StackConfig, stack: string, opts?: pulumi.CustomResourceOptions): aws.Provider {
  return new aws.Provider(
    name,
    {
      region: cfg.region as aws.Region,
      defaultTags: { tags: defaultTagsFor(cfg, stack) },
    },
    opts,
  );
}
