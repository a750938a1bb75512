import { echo } from '../../contract';
import { defineProcessor } from '../processor';

export default defineProcessor(echo, async ({ input }) => ({ result: { payload: input.payload } }));
