/**
 * RaftManager: one voter of the metadata quorum on real files, a real clock and TCP (Kafka's
 * KafkaRaftManager). It opens `<dir>` (the `__cluster_metadata-0` directory: log, quorum-state,
 * snapshots; file-store.ts), listens on the controller listener, and runs the RaftClient.
 *
 * The client is single-threaded logic; here every entry into it (a timer, a message, a proposal)
 * runs to completion on the event loop, which is what the core assumes.
 */
import type { Logger } from '../storage/logger.js';
import { noopLogger } from '../storage/logger.js';
import { FileQuorumStateStore, FileRaftLog, FileSnapshotStore } from './file-store.js';
import { DEFAULT_RAFT_TIMING, RaftClient, type RaftConfig } from './raft-client.js';
import { RaftTcpTransport, type ControllerApi, type VoterEndpoint } from './tcp-transport.js';
import type { OffsetAndEpoch, RaftListener, SnapshotId } from './types.js';

export interface RaftManagerOptions {
  nodeId: number;
  /** `controller.quorum.voters`. */
  voters: readonly VoterEndpoint[];
  /** The metadata log directory (`<log.dirs>/__cluster_metadata-0`). */
  dir: string;
  /** The controller listener's address. */
  listenHost: string;
  listenPort: number;
  clusterId?: string;
  timing?: Partial<Omit<RaftConfig, 'nodeId' | 'voters' | 'random' | 'testingBugs'>>;
  listener: RaftListener;
  logger?: Logger;
  /** More apis answered on the controller listener (DescribeQuorum). */
  extraApis?: readonly ControllerApi[];
}

export class RaftManager {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    readonly client: RaftClient,
    private readonly log: FileRaftLog,
    private readonly transport: RaftTcpTransport,
    /** The controller listener's port. */
    readonly port: number,
  ) {}

  static async start(options: RaftManagerOptions): Promise<RaftManager> {
    const logger = options.logger ?? noopLogger;
    const voterIds = options.voters.map((v) => v.id);
    const config: RaftConfig = {
      ...DEFAULT_RAFT_TIMING,
      ...options.timing,
      nodeId: options.nodeId,
      voters: voterIds,
      random: Math.random,
    };
    const log = FileRaftLog.open(options.dir);
    const transport = new RaftTcpTransport(options.nodeId, options.voters, options.clusterId ?? '', logger, options.extraApis);
    let manager: RaftManager | null = null;
    const clock = {
      nowMs: () => Date.now(),
      wakeAt: (timeMs: number) => manager?.wakeAt(timeMs),
    };
    const listener: RaftListener = {
      handleCommit: (offset, entry) => options.listener.handleCommit(offset, entry),
      handleLoadSnapshot: (id, data) => options.listener.handleLoadSnapshot(id, data),
      handleLeaderChange: (leaderId, epoch) => {
        logger.info('metadata quorum leader', { leaderId, epoch });
        options.listener.handleLeaderChange(leaderId, epoch);
      },
    };
    const client = new RaftClient(config, log, new FileQuorumStateStore(options.dir, voterIds), new FileSnapshotStore(options.dir), clock, transport, listener);
    let port: number;
    try {
      port = await transport.listen(options.listenHost, options.listenPort, (m) => {
        if (manager !== null && !manager.closed) client.handle(m);
      });
    } catch (e) {
      log.close();
      await transport.close();
      throw e;
    }
    manager = new RaftManager(client, log, transport, port);
    client.start();
    return manager;
  }

  private wakeAt(timeMs: number): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.client.poll();
    }, Math.max(0, timeMs - Date.now()));
  }

  /** See RaftClient.propose. */
  propose(values: readonly Buffer[]): OffsetAndEpoch | null {
    return this.closed ? null : this.client.propose(values);
  }

  createSnapshot(endOffset: number, data: Buffer): SnapshotId {
    return this.client.createSnapshot(endOffset, data);
  }

  /** Hands leadership over (if leading) and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.client.resign();
    this.closed = true;
    this.client.close();
    if (this.timer !== null) clearTimeout(this.timer);
    // Let the EndQuorumEpoch requests reach the socket before the connections close.
    await new Promise((resolve) => setImmediate(resolve));
    await this.transport.close();
    this.log.close();
  }
}
