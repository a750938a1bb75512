import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { UsageError, shownArgument } from './output';

/** Where a pod finds its service account's credentials. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class KubeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = this.constructor.name;
  }
}

export interface KubeClient {
  /** The API server (or `kubectl proxy`) the client talks to. */
  server: string;
  /** GET a path of the API; JSON back, a KubeError with the status otherwise. */
  get<T>(path: string): Promise<T>;
}

/**
 * A read-only client of the Kubernetes API: inside a pod, the service account's token and
 * CA (the `platform` CLI ships in the image, so runbooks run it in the cluster); outside,
 * an explicit URL such as `kubectl proxy`'s http://127.0.0.1:8001, which brings the
 * operator's own credentials. No kubeconfig parsing, no exec plugins.
 */
export function kubeClient(options: { server?: string; timeoutMs?: number } = {}, env: NodeJS.ProcessEnv = process.env): KubeClient {
  const timeoutMs = options.timeoutMs ?? 5_000;
  let server = options.server;
  let token: string | undefined;
  let ca: Buffer | undefined;
  if (server === undefined) {
    const host = env.KUBERNETES_SERVICE_HOST;
    if (!host) throw new UsageError('not running in a pod (KUBERNETES_SERVICE_HOST is unset): pass --kube-api, e.g. --kube-api http://127.0.0.1:8001 with `kubectl proxy` running');
    server = `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`;
    try {
      token = readFileSync(`${SERVICE_ACCOUNT_DIR}/token`, 'utf8').trim();
      ca = readFileSync(`${SERVICE_ACCOUNT_DIR}/ca.crt`);
    } catch (error) {
      throw new UsageError(`cannot read the pod's service account credentials under ${SERVICE_ACCOUNT_DIR}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new UsageError(`--kube-api must be a URL such as http://127.0.0.1:8001, got ${shownArgument(server)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError('--kube-api must be an http:// or https:// URL');

  return {
    server: base.origin,
    get<T>(path: string): Promise<T> {
      const url = new URL(path, base);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      return new Promise<T>((resolve, reject) => {
        const req = send(url, { method: 'GET', headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, ...(ca ? { ca } : {}), timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              let reason = body.slice(0, 200);
              try {
                reason = (JSON.parse(body) as { message?: string }).message ?? reason;
              } catch {
                // Not JSON (a proxy's HTML page): keep the start of the text.
              }
              reject(new KubeError(`GET ${url.pathname}: ${status} ${reason}`.trim(), status));
              return;
            }
            try {
              resolve(JSON.parse(body) as T);
            } catch {
              reject(new KubeError(`GET ${url.pathname}: the answer is not JSON`));
            }
          });
        });
        req.on('timeout', () => req.destroy(new KubeError(`GET ${url.pathname}: no answer within ${timeoutMs / 1_000} s`)));
        req.on('error', (error) => reject(error instanceof KubeError ? error : new KubeError(`GET ${url.pathname}: ${error.message}`)));
        req.end();
      });
    },
  };
}
