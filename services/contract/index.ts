export * from './env';
export * from './http';
export * from './queues';
export * from './metrics';
export * from './slo';
export * from './job-types';
export * from './job-model';
export * from './jobs';
