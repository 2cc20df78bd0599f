/// <reference types="node" />
import { EventEmitter } from 'node:events'

import type { HandoverOptions as NativeOptions } from './binding'

/**
 * Options for {@link HandoverPeer} and {@link HandoverStatus}: the native
 * ones (generated from the Rust docs), plus the logger, which JS owns.
 */
export interface HandoverOptions extends NativeOptions {
  /**
   * Where log lines go instead of stdout: a function `(level, message)` (level
   * is a syslog name), or an object with `error`/`warn`/`info`/`debug` methods
   * (`console`, pino, winston…). Messages start with `[<context id>]`.
   */
  logger?: ((level: string, message: string) => void) | HandoverLogger
}

/** A logger object; syslog levels map to these methods (`log` is the fallback). */
export interface HandoverLogger {
  error?(message: string): void
  warn?(message: string): void
  info?(message: string): void
  debug?(message: string): void
  log?(message: string): void
}

/** Packet counters of a peer or a status channel (generated from the Rust docs). */
export type { HandoverStats } from './binding'
import type { HandoverStats } from './binding'

/** `'shuttingDown'` and `'handover'` payloads (generated from the Rust docs). */
export type { ShuttingDownEvent, HandoverReport } from './binding'
import type { ShuttingDownEvent, HandoverReport } from './binding'

/** What a status listener receives for every status packet heard (generated from the Rust docs). */
export type { HandoverStatusMessage } from './binding'
import type { HandoverStatusMessage } from './binding'

export interface HandoverContext {
  /** Shown in every log line (a non-string id is shown as text, as handover-lib did). */
  id: string
  [key: string]: unknown
}

/**
 * When an instance started: a Date, or (as handover-lib took it) ms since
 * the epoch as a number, a bigint, a string of digits, or anything whose
 * `valueOf()` gives one of those.
 */
export type StartedAt = Date | number | bigint | string | { valueOf(): number | bigint | string }

/**
 * Coordinates the hand-over between the old and the new instance of a service
 * updated with balena's hand-over strategy. A drop-in for `handover-lib`'s class.
 */
export declare class HandoverPeer extends EventEmitter {
  /**
   * @param startedAt when this instance started; a younger instance (later
   *   `startedAt`) makes this one hand over.
   * @param context `{ id }` shown in log lines; default `PID<pid>-[<0..1000>]-`.
   * @param options settings that win over the environment.
   */
  constructor(startedAt: StartedAt, context?: HandoverContext, options?: HandoverOptions)
  /** The very value passed to the constructor (a Date, as documented). */
  readonly startedAt: Date
  context: HandoverContext
  /** UDP port announcements use. */
  readonly shutdownPort: number
  /** Address announcements are sent to. */
  readonly shutdownBroadcastAddress: string
  /**
   * True once a younger instance was heard. Writable, as handover-lib's field
   * was: `true` makes the peer ignore younger instances and not start
   * broadcasting; `false` undoes that (a handover already begun stays).
   */
  shuttingDown: boolean
  /** Random id carried in announcements; between two instances with the same `startedAt`, the higher id survives. */
  readonly instanceId: string
  /** Resolves once this instance has handed over (callback settled, file written or failed). Never rejects. */
  readonly handover: Promise<HandoverReport>
  /**
   * Announces this instance now, then after 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s,
   * then every heartbeat (10 s). Idempotent; does nothing (with a warning)
   * once shutting down. Keeps the process alive until `close()` or the handover.
   */
  startBroadcasting(): void
  /**
   * Listens for younger instances. On the first one, exactly once: sets
   * `shuttingDown`, stops announcing, awaits `shutdownCallback()`, writes the
   * handover-complete file, stops listening. The process is not exited: the
   * supervisor kills it. A callback that throws, rejects or (with
   * `callbackTimeoutMs`) hangs is logged and the file still written.
   */
  startListening(shutdownCallback: () => unknown | Promise<unknown>): void
  /** Stops announcing and listening. A handover already under way still completes. */
  close(): void
  /** Packet counters. */
  stats(): HandoverStats

  on(event: 'shuttingDown', listener: (event: ShuttingDownEvent) => void): this
  on(event: 'handover', listener: (report: HandoverReport) => void): this
  on(event: 'error', listener: (error: Error) => void): this
  once(event: 'shuttingDown', listener: (event: ShuttingDownEvent) => void): this
  once(event: 'handover', listener: (report: HandoverReport) => void): this
  once(event: 'error', listener: (error: Error) => void): this
}

/**
 * Announces whether this instance serves (`UP`, every 10 s) or drains (`DOWN`,
 * every 100 ms), with its service name and IPv4 addresses, so that routers
 * and proxies can follow which instance serves.
 */
export declare class HandoverStatus extends EventEmitter {
  /**
   * @param serviceName at most 63 bytes of UTF-8.
   * @param addresses at most 10 IPv4 addresses.
   */
  constructor(startedAt: StartedAt, serviceName: string, addresses: string[], context?: HandoverContext, options?: HandoverOptions)
  readonly startedAt: Date
  readonly serviceName: string
  readonly addresses: string[]
  context: HandoverContext
  /** UDP port of the status channel. */
  readonly networkPort: number
  /** Address status messages are sent to. */
  readonly statusBroadcastAddress: string
  /**
   * Sends `UP` now, at 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s, then every 10 s;
   * idempotent; leaves `DOWN` running (as handover-lib). From now on routers
   * are heard on the router port (`routerPort`), for `drain()`.
   */
  startBroadcastingServiceUp(): void
  /**
   * Sends `DOWN` now and every 100 ms; a repeated call restarts that ticker;
   * leaves `UP` running (as handover-lib): DOWN is terminal for this instance.
   */
  startBroadcastingServiceDown(): void
  /** Calls `callback` for every status packet heard, our own included. Errors it throws or rejects with are logged. */
  startListening(callback: (message: HandoverStatusMessage) => unknown | Promise<unknown>): void
  /**
   * Starts `DOWN` (as `startBroadcastingServiceDown`), then resolves once
   * every router of this service heard in the last 3 s confirmed that its
   * proxy sends no new requests here, or after `timeoutMs` (default 10000).
   * With no router heard, at once. Never rejects for a timeout.
   */
  drain(options?: { timeoutMs?: number }): Promise<DrainReport>
  /** Stops the tickers and closes the sockets. */
  close(): void
  stats(): HandoverStats

  on(event: 'error', listener: (error: Error) => void): this
}

/** How a drain ended, and the routers it heard (generated from the Rust docs). */
export type { DrainReport, RouterInfo } from './binding'
import type { DrainReport } from './binding'

/** Route tables, router events and counters (generated from the Rust docs). */
export type { RouteTableObject as RouteTable, RouteServer, RouterEvent, RouterStats } from './binding'
import type { RouteTableObject, RouterEvent, RouterStats, HandoverRouterOptions as NativeRouterOptions } from './binding'

/** What a router drives: a proxy's control interface (see adapters/ and docs/ROUTING.md). */
export interface RouterAdapter {
  /**
   * Make the proxy route exactly as `table` says, then confirm it from the
   * proxy's own state; resolve only then. Called again every `reconcileMs`
   * with the same table: cheap when the proxy matches, a repair when not.
   */
  apply(table: RouteTableObject): Promise<void>
  close?(): Promise<void>
  describe?(): string
}

export interface HandoverRouterOptions extends NativeRouterOptions {
  /** Where log lines go instead of stdout, as for the other classes. */
  logger?: HandoverLogger | ((level: string, message: string) => void)
}

/** Follows the status channel of one service and keeps a proxy in step through an adapter. */
export declare class HandoverRouter extends EventEmitter {
  constructor(adapter: RouterAdapter, options?: HandoverRouterOptions)
  /** The subnets it routes, once started. */
  subnets: string[]
  /** 16 hex digits: this router in HELLO, DRAINED and drain reports. */
  readonly id: string
  /** Starts following the status channel; apply failures are retried and reported as events. */
  start(): Promise<this>
  /** The table last handed to the adapter, or null before the first. */
  table(): RouteTableObject | null
  stats(): RouterStats
  close(): Promise<void>
  on(event: 'change', listener: (line: string, event: RouterEvent) => void): this
  on(event: 'applied', listener: (table: RouteTableObject) => void): this
  on(event: 'error', listener: (error: Error) => void): this
}

/** A decoded packet of either channel, for tools (generated from the Rust docs). */
export type { PacketDescription } from './binding'
import type { PacketDescription } from './binding'

/** Decodes one packet of the handover or the status channel. */
export declare function describePacket(packet: Buffer | Uint8Array): PacketDescription

/** Encodes a 120-byte status message (v2); throws on values that do not fit. */
export declare function encodeStatusMessage(timestampMs: number | Date, serviceName: string, addresses: string[], status: string): Buffer

/** What one channel's settings resolve to, and where each came from (generated from the Rust docs). */
export type { ChannelSettingsText, ChannelSettings, ChannelSettingOrigins, HandoverSetting } from './binding'
import type { ChannelSettingsText, ChannelSettings, HandoverSetting } from './binding'

/**
 * What one channel of a `HandoverPeer` (`'handover'`) or `HandoverStatus`
 * (`'status'`) would use with these settings (text, as a command line gives
 * them) and environment (default `process.env`), as the constructors
 * resolve them. Invalid values throw their `TypeError` / `RangeError`.
 */
export declare function resolveChannelSettings(
  channel: 'handover' | 'status',
  given?: ChannelSettingsText | null,
  env?: Record<string, string | undefined>,
): ChannelSettings

/** Every setting the configuration reads, with its environment variable and default. */
export declare function settingDescriptions(): HandoverSetting[]

/** What a shared listener's `stats()` gives (generated from the Rust docs). */
export type { SharedListenerStats } from './binding'
import type { SharedListenerStats } from './binding'

export interface ListenSharedOptions {
  /** TCP port both instances listen on. */
  port: number
  /** IP address to listen on; default `'0.0.0.0'` (`'::'` takes IPv4 too). */
  host?: string
  /** Default 511, as Node's. */
  backlog?: number
  /**
   * This instance's peer: new connections come here at its
   * `startBroadcasting()`, and when it hands over, this listener is
   * drained before the shutdown callback runs.
   */
  peer?: HandoverPeer
  /**
   * `false`: no cBPF steering, only SO_REUSEPORT (the kernel's hash spreads
   * new connections over both instances until the older one closes), as
   * where the kernel refuses the program. Default true.
   */
  steering?: boolean
  /** How long the drain may take at most; default 5000 ms. */
  drainTimeoutMs?: number
  logLevel?: string
  logger?: HandoverOptions['logger']
}

/** A TCP port shared with the other instance of this service (Linux). */
export declare class SharedListener {
  /** Resolves once the server listens (after retries, on a first roll-out). */
  readonly listening: Promise<SharedListener>
  /** How long the bind was retried because a listener that does not share the port held it. */
  readonly retriedMs: number
  /** New connections of the group come here; `'self'`, `'refused'`, or `'pending'` before listening. */
  steer(): string
  /** Resolves once nothing is queued on this listener any more; then lets go of our copy of the socket. */
  drain(): Promise<void>
  /** Drains, then closes the server; resolves once it closed. */
  close(): Promise<void>
  stats(): SharedListenerStats | null
}

/**
 * Listens `server` (a `net.Server` or `http.Server`) on a TCP port shared
 * with the other instance of this service (`SO_REUSEPORT`, Linux; other
 * systems throw `ERR_HANDOVER_SOCKET`). For `network_mode: host`.
 */
export declare function listenShared(server: import('node:net').Server, options: ListenSharedOptions): SharedListener
