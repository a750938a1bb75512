import type * as pulumi from '@pulumi/pulumi';
import { backlogQuery, QUEUES } from '../../services/contract';

export interface ReplicaBounds {
  min: number;
  max: number;
}

/**
 * Fewest workers a stack runs, idle or not. The worker is what Prometheus scrapes for the
 * queue, dead-letter, PostgreSQL and Redis metrics and what `platform doctor` reads
 * heartbeats from; a fleet scaled to zero would page WorkerAbsent and blind every alert
 * that reads those metrics, while the first job after a lull would wait for a pod (and
 * perhaps a node) to start.
 */
export const MIN_WORKER_REPLICAS = 1;
export const WORKER_MINIMUM_REASON =
  'idle workers must not scale away: the worker exports the queue, dead-letter, PostgreSQL and Redis metrics the alerts read, so with none running WorkerAbsent pages and those alerts go blind (KEDA adds workers above the minimum when jobs queue)';

/** Slower down than up: a burst of jobs gets workers at once, a lull gives them back gradually. */
const SCALE_DOWN = { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] };

/** autoscaling/v2 HorizontalPodAutoscaler spec of the api: CPU utilisation against the request. */
export function apiAutoscalerSpec(deploymentName: pulumi.Input<string>, replicas: ReplicaBounds, targetCpuUtilization: number) {
  return {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deploymentName },
    minReplicas: replicas.min,
    maxReplicas: replicas.max,
    metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: targetCpuUtilization } } }],
    behavior: { scaleDown: SCALE_DOWN },
  };
}

export interface BacklogScalerSettings {
  replicas: ReplicaBounds;
  /** Jobs queued or running one worker replica is meant to carry. */
  backlogPerReplica: number;
  /** JOBS_RUNNING_PER_USER: a user's jobs past it wait for their share, so the backlog counts at most this many of them. */
  jobsRunningPerUser: number;
  pollingIntervalSeconds: number;
  cooldownSeconds: number;
  /** PostgreSQL the scaler counts in, and the role it connects as. */
  database: { host: pulumi.Input<string>; port: number; name: string; user: string };
  /** Name of the TriggerAuthentication holding the scaler role's password. */
  authenticationName: pulumi.Input<string>;
}

/**
 * The trigger of the workers' ScaledObject: the backlog counted where every accepted job
 * lives, PostgreSQL (`backlogQuery`: queued and running jobs, each user's that wait for
 * their share of the slots left out, since more workers would not run them). A Redis list-length
 * trigger would see BullMQ's `wait` list only, not prioritized jobs (a sorted set), delayed
 * retries (another sorted set) nor the jobs being run, and under-count exactly when
 * clients use priorities. TLS is required; KEDA's scaler has no RDS roots to verify with.
 */
export function backlogTrigger(s: BacklogScalerSettings) {
  return {
    type: 'postgresql',
    name: `${QUEUES.jobs}-backlog`,
    metadata: {
      host: s.database.host,
      port: String(s.database.port),
      dbName: s.database.name,
      userName: s.database.user,
      sslmode: 'require',
      query: backlogQuery(s.jobsRunningPerUser),
      targetQueryValue: String(s.backlogPerReplica),
      activationTargetQueryValue: '0',
    },
    authenticationRef: { name: s.authenticationName },
  };
}

/** keda.sh/v1alpha1 ScaledObject spec of the workers: it owns their HorizontalPodAutoscaler (no other may target them). */
export function workerScaledObjectSpec(deploymentName: pulumi.Input<string>, s: BacklogScalerSettings) {
  return {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deploymentName },
    minReplicaCount: s.replicas.min,
    maxReplicaCount: s.replicas.max,
    pollingInterval: s.pollingIntervalSeconds,
    cooldownPeriod: s.cooldownSeconds,
    advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: SCALE_DOWN } } },
    triggers: [backlogTrigger(s)],
  };
}
