import { dirname } from 'node:path';
import express, { Router } from 'express';
import { PATHS } from '../../contract';

/** Swagger UI pointed at our document; served from this origin so the page works offline and passes a strict CSP. */
const DOCS_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Platform Kit API</title>
    <link rel="stylesheet" type="text/css" href="${PATHS.docs}/assets/swagger-ui.css">
    <link rel="icon" type="image/png" href="${PATHS.docs}/assets/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${PATHS.docs}/assets/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="${PATHS.docs}/init.js" charset="UTF-8"></script>
  </body>
</html>
`;

const DOCS_INIT = `window.onload = function () {
  window.ui = SwaggerUIBundle({ url: ${JSON.stringify(PATHS.openapi)}, dom_id: '#swagger-ui', deepLinking: true });
};
`;

export function openApiRoutes(document: Record<string, unknown>): Router {
  const router = Router();
  const body = JSON.stringify(document);
  const assets = dirname(require.resolve('swagger-ui-dist/package.json'));

  router.get(PATHS.openapi, (_req, res) => {
    res.type('application/json').send(body);
  });
  router.get(PATHS.docs, (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  router.get(`${PATHS.docs}/init.js`, (_req, res) => {
    res.type('application/javascript').send(DOCS_INIT);
  });
  router.use(`${PATHS.docs}/assets`, express.static(assets, { index: false, maxAge: '1d', fallthrough: true }));
  return router;
}
