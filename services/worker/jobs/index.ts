import type { JOB_TYPES, JobTypeName } from '../../contract';
import type { Processor } from '../processor';
import csvSummary from './csv-summary';
import echo from './echo';
import echoBatch from './echo-batch';
import emailSend from './email-send';
import fileChecksum from './file-checksum';
import fileCompress from './file-compress';
import filesChecksum from './files-checksum';
import sleep from './sleep';
import textStats from './text-stats';

/**
 * One processor per declared job type, typed by its declaration: a type in JOB_TYPES
 * without a processor, a processor for an undeclared type, or one registered under
 * another type's name fails to compile.
 */
export type ProcessorRegistry = { readonly [Name in JobTypeName]: Processor<(typeof JOB_TYPES)[Name]> };

export const PROCESSORS: ProcessorRegistry = {
  echo,
  sleep,
  'file.checksum': fileChecksum,
  'file.compress': fileCompress,
  'text.stats': textStats,
  'csv.summary': csvSummary,
  'files.checksum': filesChecksum,
  'echo.batch': echoBatch,
  'email.send': emailSend,
};

/** The processor for a job type name read from a queue or a row; undefined for an unknown type. */
export function findProcessor(type: string): Processor | undefined {
  return Object.hasOwn(PROCESSORS, type) ? (PROCESSORS[type as JobTypeName] as Processor) : undefined;
}
