import path from 'node:path';
import { consoleRoutes, isConsoleBuild } from '../../../services/api/routes/console';

const SOURCES = path.resolve(__dirname, '..', '..', '..', 'services', 'console');

describe('the console the API serves (services/api/routes/console.ts)', () => {
  it('tells a Vite build from the console\'s sources, which also hold an index.html', () => {
    expect(isConsoleBuild(SOURCES)).toBe(false);
    expect(() => consoleRoutes(SOURCES)).toThrow(`${SOURCES} holds no console build (run npm run build)`);
    expect(isConsoleBuild(path.join(SOURCES, 'missing'))).toBe(false);
  });
});
