import { echoBatch } from '../../contract';
import { defineProcessor } from '../processor';

/** The reduce step of echo.batch: counts how its echo tasks ended. */
export default defineProcessor(echoBatch, async ({ input, tasks }) => {
  let succeeded = 0;
  let failed = 0;
  for await (const task of tasks()) {
    if (task.status === 'succeeded') succeeded += 1;
    else failed += 1;
  }
  return { result: { tasks: input.count, succeeded, failed } };
});
