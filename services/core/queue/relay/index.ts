export { lapsesOfEntry, runsEndedWithWorker, runsOfGivenUpEntry } from './entries';
export type { EnqueueRow, InterruptedRuns, OwnEntryData, QueueJobData, RequeueOptions, SharedEntryData } from './entries';
export type { RelayOptions } from './options';
export { Relay } from './relay';
export type { SweepReport } from './sweep';
export { SWEEP_LOCK_KEY } from './sweep-lock';
