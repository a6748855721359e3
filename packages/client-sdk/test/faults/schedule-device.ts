/**
 * One device of the randomized schedules: its SQLite file, and while open, its client and a
 * fault-injecting transport. Faults set on the transport carry over restarts; what each device
 * showed and failed to decrypt is kept across them.
 */
import { SottoClient, StorageBatch, type SottoClientOptions } from '../../src/index.js';
import type { SqliteStorage } from '../../src/node/index.js';
import { clientOptions, openSqliteStorage } from '../helpers/harness.js';
import { FaultyTransport } from './fault-transport.js';

export class ScheduleDevice {
  client: SottoClient | undefined;
  storage: SqliteStorage | undefined;
  transport = new FaultyTransport();
  /** Faults injected by earlier transports of this device (one per open). */
  private earlier = { duplicates: 0, acksDropped: 0 };
  /** Incoming message ids in the order they were shown, across restarts. */
  readonly shown: Array<{ id: string; from: string; fromDevice: number; conversationId: string }> = [];
  readonly failures: unknown[] = [];
  /** Sends that failed for good: message id and reason. */
  readonly sendFailures: string[] = [];

  constructor(
    readonly username: string,
    readonly dbPath: string,
    private readonly relayUrl: string,
    private readonly extra: Partial<SottoClientOptions> = {},
  ) {}

  async register(): Promise<void> {
    this.storage = await openSqliteStorage(this.dbPath);
    this.attach(await SottoClient.register(this.options(), this.username));
    await this.client!.connect();
  }

  /** Links this device to `approver`'s account (history not transferred) and connects it. */
  async linkTo(approver: SottoClient): Promise<void> {
    this.storage = await openSqliteStorage(this.dbPath);
    const link = await SottoClient.link(this.options());
    const completing = link.complete({ timeoutMs: 20_000 });
    await approver.approveLink(link.code, { transferHistory: false });
    this.attach((await completing).client);
    await this.client!.connect();
  }

  async open(): Promise<void> {
    if (this.client) return;
    const faults = { ...this.transport.faults };
    this.earlier = this.injected();
    this.transport = new FaultyTransport();
    Object.assign(this.transport.faults, faults);
    this.storage = await openSqliteStorage(this.dbPath);
    this.attach(await SottoClient.open(this.options()));
    await this.client!.connect();
  }

  /** Duplicate pushes and lost acks injected so far, across restarts. */
  injected(): { duplicates: number; acksDropped: number } {
    return {
      duplicates: this.earlier.duplicates + this.transport.duplicatesInjected,
      acksDropped: this.earlier.acksDropped + this.transport.acksDropped,
    };
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.storage?.close();
    this.client = undefined;
    this.storage = undefined;
  }

  /**
   * Restarts the device without any of its sessions (a backup restored from before them, say):
   * what others send on those sessions fails to decrypt here until their resend requests are
   * answered. Returns how many sessions went.
   */
  async loseSessions(): Promise<number> {
    const wasOpen = this.client !== undefined;
    await this.close();
    const storage = await openSqliteStorage(this.dbPath);
    const batch = new StorageBatch();
    const keys = await storage.listProtocolKeys('session');
    for (const key of keys) batch.protocolRecord('session', key, null);
    await storage.commit(batch);
    await storage.close();
    if (wasOpen) await this.open();
    return keys.length;
  }

  /** Everything on: faults off, the device open, its socket dropped once so lost acks come back. */
  async settle(): Promise<void> {
    this.transport.faults.dropAcks = false;
    this.transport.faults.duplicateEnvelopes = false;
    await this.open();
    this.transport.dropConnections();
  }

  private options(): SottoClientOptions {
    return clientOptions(this.relayUrl, this.storage!, { ...this.extra, webSocket: this.transport.factory });
  }

  private attach(client: SottoClient): void {
    this.client = client;
    client.events.on('message', (m) => {
      if (!m.outgoing) this.shown.push({ id: m.id, from: m.senderAccountId, fromDevice: m.senderDeviceId, conversationId: m.conversationId });
    });
    client.events.on('decryptionFailed', (e) => this.failures.push(e));
    client.events.on('sendFailed', (e) => this.sendFailures.push(`${e.messageId}: ${e.reason}`));
  }
}
