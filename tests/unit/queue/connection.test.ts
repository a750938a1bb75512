/**
 * ElastiCache is reached as the workloads configure it: `rediss://:<auth token>@host:6379`
 * gives a TLS connection (server certificate checked against Node's roots, which hold
 * Amazon's) authenticated with the token; `redis://` stays plain for the local run.
 */
import { createRedisConnection } from '../../../services/core/queue/connection';

describe('createRedisConnection', () => {
  it('connects over TLS with the auth token for a rediss:// URL, verifying the certificate', () => {
    const connection = createRedisConnection('rediss://:s3cr3t-auth-token@master.cache.example.internal:6379', 'client');
    try {
      expect(connection.options.tls).toBeDefined();
      expect((connection.options.tls as { rejectUnauthorized?: boolean }).rejectUnauthorized).not.toBe(false);
      expect(connection.options.password).toBe('s3cr3t-auth-token');
      expect(connection.options.host).toBe('master.cache.example.internal');
    } finally {
      connection.disconnect();
    }
  });

  it('stays in plain text for redis://', () => {
    const connection = createRedisConnection('redis://127.0.0.1:1', 'client');
    try {
      expect(connection.options.tls).toBeUndefined();
    } finally {
      connection.disconnect();
    }
  });
});
