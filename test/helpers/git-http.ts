/**
 * A real git smart-HTTP server for tests: `git http-backend` (git's own CGI program, git-http-backend(1))
 * behind a node HTTP server on 127.0.0.1 that demands HTTP Basic credentials (RFC 7617). A clone through it
 * succeeds only when the client sends the expected `Authorization` header, so a test can prove credentials
 * reach git without being written anywhere. Serves the bare or non-bare repositories under `root` as
 * `http://127.0.0.1:PORT/<path under root>`.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

/** A running server; `requests` counts answered requests, `refused` those without the right credentials. */
export interface GitHttpServer {
  url: string;
  requests: number;
  refused: number;
  close(): Promise<void>;
}

/**
 * Start the server.
 * @param opts.root directory whose repositories are served; opts.username / opts.password the only accepted credentials
 */
export async function startGitHttpServer(opts: { root: string; username: string; password: string }): Promise<GitHttpServer> {
  const backend = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
  const want = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
  const state = { requests: 0, refused: 0 };
  const server: Server = createServer((req, res) => {
    if (req.headers.authorization !== want) {
      state.refused++;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' }).end('credentials required\n');
      return;
    }
    state.requests++;
    const u = new URL(req.url ?? '/', 'http://x');
    const cgi = spawn(backend, [], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: opts.root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        REMOTE_USER: opts.username,
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    get refused() {
      return state.refused;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
