import { type PlatformPolicy, type Props, describe, obj, resourcePolicy } from '../lib/policy';
import taggable from './taggable-types.json';

/**
 * Every AWS resource type that supports provider default tags (it has `tagsAll`), generated
 * from the installed @pulumi/aws by `npm run policy -- --readme`; a test keeps it current.
 */
export const TAGGABLE_TYPES: ReadonlySet<string> = new Set(taggable.types);

function tagMap(v: unknown): Props {
  if (typeof v === 'string') {
    try {
      return obj(JSON.parse(v)) ?? {};
    } catch {
      return {};
    }
  }
  return obj(v) ?? {};
}

/**
 * Tags the resource will carry: its own, what the engine computed (`tagsAll`) and the
 * provider's `defaultTags`. Explicit provider inputs arrive JSON-encoded, hence `tagMap`.
 */
export function effectiveTags(props: Props, provider: { props: Props } | undefined): Props {
  const defaults = tagMap(tagMap(provider?.props.defaultTags).tags);
  return { ...defaults, ...tagMap(props.tagsAll), ...tagMap(props.tags) };
}

export const tagPolicies: PlatformPolicy[] = [
  resourcePolicy<{ requiredTags: string[] }>({
    name: 'aws-required-tags',
    description:
      'Every AWS resource that supports tags carries `requiredTags` (project, stack, owner, cost-centre) with non-empty values, from its own tags or the provider\'s defaultTags, so the bill and the pager reach the right team.',
    control: { framework: 'AWS Tagging Best Practices', id: 'ownership', url: 'https://docs.aws.amazon.com/whitepapers/latest/tagging-best-practices/tagging-best-practices.html' },
    concern: 'cost',
    severity: 'low',
    remediation: 'Set defaultTags { tags: { project, stack, owner, "cost-centre" } } on the AWS provider the program uses (or tags on the resource).',
    types: [...TAGGABLE_TYPES],
    config: {
      schema: { properties: { requiredTags: { type: 'array', items: { type: 'string' }, default: ['project', 'stack', 'owner', 'cost-centre'] } } },
      perStack: { dev: { requiredTags: ['project', 'stack', 'owner', 'cost-centre'] }, prod: { requiredTags: ['project', 'stack', 'owner', 'cost-centre'] } },
    },
    validate: (props, args, report) => {
      const tags = effectiveTags(props, args.provider);
      const missing = args.config.requiredTags.filter((k) => typeof tags[k] !== 'string' || (tags[k] as string).trim() === '');
      if (missing.length > 0) report(`${describe(args)} is missing tag(s) ${missing.join(', ')}.`);
    },
  }),
];
