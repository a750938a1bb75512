import { defineConfig } from 'vite';

/**
 * The console is built into dist/services/console, beside the compiled API that serves it,
 * so the service image (which copies dist/services) carries it. The manifest tells the API
 * that a directory holds a build rather than these sources.
 */
export default defineConfig({
  base: '/',
  build: {
    outDir: '../../dist/services/console',
    emptyOutDir: true,
    manifest: true,
    assetsDir: 'assets',
    target: 'es2022',
  },
});
