import type { PolicyStatement } from './iam';

/** Bucket policy statements that refuse any request without TLS, or with TLS older than 1.2. */
export function tlsOnlyStatements(bucketArn: string): PolicyStatement[] {
  const resources = [bucketArn, `${bucketArn}/*`];
  return [
    { Sid: 'DenyInsecureTransport', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: resources, Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
    { Sid: 'DenyOutdatedTls', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: resources, Condition: { NumericLessThan: { 's3:TlsVersion': '1.2' } } },
  ];
}

/**
 * Lifecycle rules every versioned bucket needs besides its own expiry: replaced and deleted
 * versions expire after `noncurrentDays` (with the delete markers they leave), and
 * interrupted multipart uploads, invisible yet billed, after a day.
 */
export function housekeepingRules(noncurrentDays: number) {
  return [
    {
      id: 'expire-noncurrent',
      status: 'Enabled',
      filter: { prefix: '' },
      noncurrentVersionExpiration: { noncurrentDays },
      expiration: { expiredObjectDeleteMarker: true },
    },
    { id: 'abort-incomplete-multipart', status: 'Enabled', filter: { prefix: '' }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } },
  ];
}
