/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$|/node_modules/jose/.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }] },
  // jose ships ES modules only; Node loads them through require(esm), jest's module runtime cannot, so swc converts them.
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  // Service tests start real PostgreSQL and Redis; infra tests load the Pulumi SDK. Both are slow to warm up.
  testTimeout: 60_000,
  // One more than the cores: many suites spend much of their time waiting (for a lock to lapse,
  // a server to start, a browser): on a 2-core host a full run took 802 s with 2 workers and
  // 658 s with 3, the cores 11 % idle on average with 3.
  maxWorkers: 3,
  // One PostgreSQL and one Redis for the whole run (tests/harness/shared.ts hands out isolated slices).
  globalSetup: '<rootDir>/tests/harness/global-setup.ts',
  globalTeardown: '<rootDir>/tests/harness/global-teardown.ts',
  reporters: ['default', '<rootDir>/tests/summary-reporter.js'],
};
