import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

export interface CertificateArgs {
  /** Host name the certificate is for, e.g. `api.example.com`. Required. */
  domain: string;
  /** Route 53 hosted zone holding the domain, for DNS validation. Required. */
  hostedZoneId: string;
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateCertificateArgs(args: CertificateArgs): string[] {
  const problems: string[] = [];
  if (args.domain.startsWith('*.')) problems.push(`domain ${args.domain}: wildcard certificates are not issued here; name the host`);
  if (!/^Z[A-Z0-9]+$/.test(args.hostedZoneId)) problems.push(`hostedZoneId ${args.hostedZoneId} is not a Route 53 zone id`);
  return problems;
}

/**
 * The public TLS certificate of the ingress (ALB), validated through DNS so that ACM
 * renews it without anyone clicking a link. The load balancer listener references
 * `certificateArn`, which resolves only once validation has succeeded.
 */
export class Certificate extends pulumi.ComponentResource {
  public readonly certificateArn: pulumi.Output<string>;
  public readonly domain: string;

  constructor(name: string, args: CertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:certificate:Certificate', name, {}, opts);
    const problems = validateCertificateArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Certificate ${name}: ${problems.join('; ')}`, this);

    const certificate = new aws.acm.Certificate(
      `${name}-cert`,
      { domainName: args.domain, validationMethod: 'DNS', keyAlgorithm: 'RSA_2048', options: { certificateTransparencyLoggingPreference: 'ENABLED' } },
      // Replace without a gap: the listener moves to the new certificate before the old one goes.
      { parent: this, deleteBeforeReplace: false },
    );
    // One domain, no SANs: exactly one validation record, so index 0 is stable.
    const option = certificate.domainValidationOptions.apply((options) => {
      const first = options[0];
      if (!first) throw new pulumi.ResourceError(`Certificate ${name}: ACM returned no DNS validation option`, this);
      return first;
    });
    const record = new aws.route53.Record(
      `${name}-validation-record`,
      { zoneId: args.hostedZoneId, name: option.resourceRecordName, type: option.resourceRecordType, records: [option.resourceRecordValue], ttl: 300, allowOverwrite: true },
      { parent: certificate },
    );
    const validation = new aws.acm.CertificateValidation(
      `${name}-validation`,
      { certificateArn: certificate.arn, validationRecordFqdns: [record.fqdn] },
      { parent: certificate },
    );

    this.domain = args.domain;
    this.certificateArn = validation.certificateArn;
    this.registerOutputs({ certificateArn: this.certificateArn, domain: args.domain });
  }
}
