import { Client } from 'pg';

/**
 * pg's Client, which also closes its connection when connecting fails. After an error raised
 * on the client's side of authentication (no password where the server asks for SCRAM, a
 * server signature that does not verify) pg hands the error back with the socket still open,
 * and pg-pool forgets the client without ending it: the server waits for the client's next
 * message until its authentication_timeout, and a process with nothing else to do cannot exit
 * meanwhile. Ending a client whose server already closed the connection does nothing.
 */
type ConnectCallback = ((error: Error) => void) | ((error: null, client: Client) => void);

export class ClosingClient extends Client {
  override connect(): Promise<Client>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<Client> | void {
    if (!callback) return new Promise((resolve, reject) => this.connect((error: Error | null) => (error ? reject(error) : resolve(this))));
    super.connect((error: Error | null) => {
      if (error) void this.end().catch(() => undefined);
      (callback as (error: Error | null, client: Client) => void)(error, this);
    });
  }
}
