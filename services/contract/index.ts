export * from './env';
export { apiCautions, ENV_RULES, isLoopbackOrigin, type EnvIssue, type EnvRule } from './env-consistency';
export * from './http';
export * from './queues';
export * from './metrics';
export * from './slo';
export * from './job-types';
export * from './job-model';
export * from './jobs';
