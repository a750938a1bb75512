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
  maxWorkers: 2,
  // One PostgreSQL and one Redis for the whole run (tests/harness/shared.ts hands out isolated slices).
  globalSetup: '<rootDir>/tests/harness/global-setup.ts',
  globalTeardown: '<rootDir>/tests/harness/global-teardown.ts',
  reporters: ['default', '<rootDir>/tests/summary-reporter.js'],
};
