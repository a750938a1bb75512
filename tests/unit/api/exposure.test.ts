import { CONSOLE_PAGES, IN_CLUSTER_PATHS, isPublicPath, PATHS } from '../../../services/contract';
import { exposureMismatches } from '../../../services/api/endpoints';

describe('what the ingress routes (PUBLIC_ROUTES) against what the API declares', () => {
  it('matches paths as Kubernetes matches Exact and Prefix paths', () => {
    expect(['/v1', '/v1/jobs', '/v1/jobs/:id/events', PATHS.openapi, PATHS.docs, `${PATHS.docs}/assets/swagger-ui.css`].filter((p) => !isPublicPath(p))).toEqual([]);
    // A prefix matches whole segments; an exact route nothing below it.
    expect(['/v1x', '/v', `${PATHS.openapi}/x`, '/docsx', '/admin/x', '/assetsx', '/jobsx', ...IN_CLUSTER_PATHS].filter((p) => isPublicPath(p))).toEqual([]);
  });

  it('routes the web console\'s pages and assets, and nothing else at the root', () => {
    expect(['/', '/jobs', '/jobs/0b0ad3c1-5a1e-4c57-9c1b-0c3c0a4f5e6d', '/assets/index-abc.js', ...Object.values(CONSOLE_PAGES)].filter((p) => !isPublicPath(p))).toEqual([]);
    expect(['/index.html', '/favicon.ico', '/submit/x', '/sign-in/x'].filter((p) => isPublicPath(p))).toEqual([]);
  });

  it('accepts operations under the public routes and the in-cluster probes and metrics', () => {
    expect(exposureMismatches(['/v1/jobs', '/v1/files/:id/content', PATHS.openapi, ...IN_CLUSTER_PATHS])).toEqual([]);
  });

  it('names an operation the ingress would never route', () => {
    expect(exposureMismatches(['/v1/jobs', '/internal/debug', '/status'])).toEqual([
      '/internal/debug is neither under PUBLIC_ROUTES nor an in-cluster path: the ingress would never route it',
      '/status is neither under PUBLIC_ROUTES nor an in-cluster path: the ingress would never route it',
    ]);
  });

  it('names an in-cluster path that routes such as a catch-all would expose', () => {
    expect(exposureMismatches(['/v1/jobs', PATHS.metrics], [{ path: '/', match: 'prefix' }])).toEqual([`${PATHS.metrics} is in-cluster only, yet PUBLIC_ROUTES route it from the internet`]);
  });
});
