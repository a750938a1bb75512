import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { awsContext } from '../shared/aws-context';
import { createKmsKey } from '../shared/kms';

export interface WebAclSettings {
  /** Requests one client IP may send in any 5 minutes before it is blocked. */
  requestsPerFiveMinutesPerIp: number;
  /** Days to keep the WAF log (a value CloudWatch accepts). */
  logRetentionDays: number;
}

/** AWS managed rule groups, in evaluation order after the rate limit. */
export const MANAGED_RULE_GROUPS = ['AWSManagedRulesAmazonIpReputationList', 'AWSManagedRulesCommonRuleSet', 'AWSManagedRulesKnownBadInputsRuleSet'] as const;

/**
 * The common rule set blocks request bodies over 8 KB; uploads (25 MiB) and JSON bodies
 * (1 MiB) are bigger by design and the api enforces its own limits, so that one rule
 * only counts.
 */
const COUNT_ONLY: Record<string, string[]> = { AWSManagedRulesCommonRuleSet: ['SizeRestrictions_BODY'] };

function visibility(metricName: string) {
  return { cloudwatchMetricsEnabled: true, metricName, sampledRequestsEnabled: true };
}

/**
 * A regional WAFv2 web ACL for the api's ALB: a per-IP rate limit, then AWS's IP
 * reputation, common and known-bad-inputs rule groups; everything else is allowed. Its
 * log goes to a KMS-encrypted log group (WAF requires the `aws-waf-logs-` name prefix),
 * with the Authorization header and cookies redacted.
 */
export function createWebAcl(name: string, settings: WebAclSettings, parent: pulumi.Resource): aws.wafv2.WebAcl {
  const own = { parent };
  const metric = `${pulumi.getProject()}-${pulumi.getStack()}-${name}`.replace(/[^A-Za-z0-9-]/g, '-');
  const acl = new aws.wafv2.WebAcl(
    `${name}-web-acl`,
    {
      description: 'Public API: rate limit per IP and AWS managed rules',
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      rules: [
        {
          name: 'rate-limit-per-ip',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: settings.requestsPerFiveMinutesPerIp, aggregateKeyType: 'IP' } },
          visibilityConfig: visibility(`${metric}-rate-limit`),
        },
        ...MANAGED_RULE_GROUPS.map((group, i) => ({
          name: group,
          priority: i + 1,
          overrideAction: { none: {} },
          statement: {
            managedRuleGroupStatement: {
              vendorName: 'AWS',
              name: group,
              ...(COUNT_ONLY[group] ? { ruleActionOverrides: (COUNT_ONLY[group] ?? []).map((rule) => ({ name: rule, actionToUse: { count: {} } })) } : {}),
            },
          },
          visibilityConfig: visibility(`${metric}-${group}`),
        })),
      ],
      visibilityConfig: visibility(metric),
    },
    own,
  );
  const ctx = awsContext(parent);
  const { key } = createKmsKey(`${name}-waf-logs`, { description: `WAF log of ${name}`, ctx, servicePrincipals: ['logs'] }, own);
  const logGroup = new aws.cloudwatch.LogGroup(
    `${name}-waf-logs`,
    { name: `aws-waf-logs-${pulumi.getProject()}-${pulumi.getStack()}-${name}`, retentionInDays: settings.logRetentionDays, kmsKeyId: key.arn },
    own,
  );
  new aws.wafv2.WebAclLoggingConfiguration(
    `${name}-waf-logging`,
    {
      resourceArn: acl.arn,
      logDestinationConfigs: [logGroup.arn],
      redactedFields: [{ singleHeader: { name: 'authorization' } }, { singleHeader: { name: 'cookie' } }],
    },
    { parent: acl },
  );
  return acl;
}
