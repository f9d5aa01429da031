import * as C from './constants.js'
import { Announce, Control } from './pb/task.js'
import { sealRecord } from './signing.js'
import { inBatches } from './batches.js'
import { specKey, taskBody } from './spec.js'
import { peerIdFromString } from '@libp2p/peer-id'
import type { DropReason } from './counters.js'
import type { TaskRecord } from './journal.js'
import type { AnnouncedTask } from './pb/task.js'
import type { ControlSender } from './result-outbox.js'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'

/** What the dispatcher asks of the submitter */
export interface DispatchTarget {
  /** the task with this id, if the submitter has it */
  record(id: string): TaskRecord | undefined
  /** hand the task to a worker (the submitter journals it and sends ASSIGN) */
  assign(record: TaskRecord, worker: PeerId, ref: string): void
}

export interface DispatcherInit {
  self: PeerId
  privateKey: PrivateKey
  /** signature domain of announcements */
  domain: string
  channels: ControlSender
  /** publish on the tasks topic */
  publish(data: Uint8Array): Promise<unknown>
  /** whether this node runs tasks too: its own worker then hears of each announced task */
  localWorker: boolean
  considerLocally(body: AnnouncedTask['task']): void
  reply(peer: PeerId, msg: Partial<Control> & { type: Control.Type, taskId: string }): void
  isStarted(): boolean
  options: { reannounceMs: number, retryElsewhereMs: number, offerTimeoutMs: number }
  log: Logger
  drop(reason: DropReason): void
}

/** Slots a worker offered for a kind of work that no ready task used yet */
interface Credit {
  worker: PeerId
  ref: string
  slots: number
  until: number
}

/**
 * The submitter's scheduling: tasks ready to be assigned, in queues by kind
 * (`specKey`), announced (one signed batch per tick, or straight to a named
 * peer; a kind whose tasks were announced a moment ago is not announced
 * again), and matched with workers' offers: an offer takes the offered task
 * and others of its kind up to its slots, and what is left stays open for a
 * while so that new tasks of the kind are assigned at once. Workers that
 * failed a task are passed over for it for `retryElsewhereMs`.
 */
export class Dispatcher {
  private readonly init: DispatcherInit
  private readonly target: DispatchTarget
  /** ready to assign, by spec key, in queue order */
  private readonly ready = new Map<string, Set<string>>()
  private readonly readySince = new Map<string, number>()
  /** when each group of ready tasks was last announced */
  private readonly groupAnnounced = new Map<string, number>()
  private announceQueue: AnnouncedTask[] = []
  private announceFlush?: ReturnType<typeof setImmediate>
  /** open offers by kind of work: new tasks of that kind are assigned at once */
  private readonly credits = new Map<string, Credit[]>()
  /** per task, the workers that failed it and when */
  private readonly failedWorkers = new Map<string, Map<string, number>>()
  /** tasks announced on the tasks topic */
  announced = 0

  constructor (init: DispatcherInit, target: DispatchTarget) {
    this.init = init
    this.target = target
  }

  stop (): void {
    clearImmediate(this.announceFlush)
    this.announceFlush = undefined
    this.announceQueue = []
    this.ready.clear()
    this.readySince.clear()
    this.groupAnnounced.clear()
    this.credits.clear()
    this.failedWorkers.clear()
  }

  /** A worker failed this task: it is passed over for it for a while */
  workerFailed (taskId: string, worker: string, at: number): void {
    let failed = this.failedWorkers.get(taskId)
    if (failed == null) {
      failed = new Map()
      this.failedWorkers.set(taskId, failed)
    }
    failed.set(worker, at)
  }

  /** The task has ended: nothing is kept for it */
  forget (taskId: string): void {
    this.failedWorkers.delete(taskId)
  }

  /** A worker is gone: its open offers go with it */
  workerLost (peer: PeerId): void {
    for (const [kind, list] of this.credits) {
      const kept = list.filter(c => !c.worker.equals(peer))
      if (kept.length === 0) {
        this.credits.delete(kind)
      } else {
        this.credits.set(kind, kept)
      }
    }
  }

  /** A pending task is ready to be assigned (it joins the queue of its kind) */
  markReady (record: TaskRecord): void {
    const key = specKey(record)
    let set = this.ready.get(key)
    if (set == null) {
      set = new Set()
      this.ready.set(key, set)
    }
    set.add(record.id)
    this.readySince.set(record.id, Date.now())
  }

  /** A task leaves the ready queue (assigned or ended) */
  unready (record: TaskRecord): void {
    const key = specKey(record)
    const set = this.ready.get(key)
    if (set != null) {
      set.delete(record.id)
      if (set.size === 0) {
        this.ready.delete(key)
      }
    }
    this.readySince.delete(record.id)
  }

  isReady (record: TaskRecord): boolean {
    return this.ready.get(specKey(record))?.has(record.id) === true
  }

  /**
   * Announce a pending task: gossip (batched with the other tasks announced in
   * the same tick under one signature), or straight to the named peer.
   * Unless `force`d, a task of a kind whose waiting tasks were announced a
   * moment ago is not announced on its own.
   */
  announce (record: TaskRecord, force = false): void {
    if (!this.init.isStarted() || !this.isReady(record)) {
      return
    }
    if (this.assignFromCredit(record)) {
      return
    }
    const key = specKey(record)
    const now = Date.now()
    // tasks of this kind announced a moment ago are still waiting: the workers that
    // heard of them pull this one with their next offers (the sweep re-announces
    // each waiting kind every reannounceMs)
    if (!force && record.to == null && (this.ready.get(key)?.size ?? 0) > 1 && now - (this.groupAnnounced.get(key) ?? 0) < this.init.options.reannounceMs) {
      return
    }
    record.round++
    this.groupAnnounced.set(key, now)
    this.announced++
    const item: AnnouncedTask = { task: taskBody(record, true), round: record.round }
    const to = record.to != null ? peerIdFromString(record.to) : undefined
    // our own executor gets a look too
    if (this.init.localWorker && (to == null || to.equals(this.init.self))) {
      this.init.considerLocally(item.task)
    }
    if (to?.equals(this.init.self) === true) {
      return
    }
    if (to != null) {
      this.sealAnnounce([item])
        .then(async signed => {
          try {
            await this.init.channels.send(to, { type: Control.Type.ANNOUNCE, taskId: record.id, attempt: 0, leaseMs: 0, free: 0, record: signed })
          } catch (err: any) {
            this.init.log('direct announce of %s to %p failed, gossiping - %e', record.id, to, err)
            await this.init.publish(signed)
          }
        })
        .catch(err => { this.init.log('announce of %s failed - %e', record.id, err) })
      return
    }
    this.announceQueue.push(item)
    this.announceFlush ??= setImmediate(() => { this.flushAnnounces() })
  }

  /** A worker has an open offer for this kind of work: assign without announcing */
  private assignFromCredit (record: TaskRecord): boolean {
    const key = specKey(record)
    const list = this.credits.get(key)
    if (list == null) {
      return false
    }
    const now = Date.now()
    for (let i = 0; i < list.length; i++) {
      const credit = list[i]
      if (credit.until < now || credit.slots <= 0) {
        list.splice(i--, 1)
        continue
      }
      if (!this.canAssign(record, credit.worker, now)) {
        continue
      }
      credit.slots--
      if (credit.slots <= 0) {
        list.splice(i, 1)
      } else if (list.length > 1) {
        // spread work over the workers that have open offers
        list.splice(i, 1)
        list.push(credit)
      }
      if (list.length === 0) {
        this.credits.delete(key)
      }
      this.target.assign(record, credit.worker, credit.ref)
      return true
    }
    if (list.length === 0) {
      this.credits.delete(key)
    }
    return false
  }

  private async sealAnnounce (tasks: AnnouncedTask[]): Promise<Uint8Array> {
    return sealRecord(this.init.privateKey, this.init.domain, Announce.encode({ tasks, issuedAt: BigInt(Date.now()) }))
  }

  private flushAnnounces (): void {
    this.announceFlush = undefined
    const queue = this.announceQueue
    this.announceQueue = []
    for (const tasks of inBatches(queue, item => (item.task?.payload?.byteLength ?? 0) + 256, C.ANNOUNCE_BATCH_BYTES, C.ANNOUNCE_BATCH_COUNT)) {
      this.sealAnnounce(tasks)
        .then(async signed => this.init.publish(signed))
        .catch(err => { this.init.log('announcing %d tasks failed - %e', tasks.length, err) })
    }
  }

  /**
   * Announce the oldest ready task of each kind: a worker that learns of one
   * task of a kind pulls the others with its offers
   */
  announceReady (force: boolean): void {
    const now = Date.now()
    for (const [key, set] of this.ready) {
      if (!force && now - (this.groupAnnounced.get(key) ?? 0) < this.init.options.reannounceMs) {
        continue
      }
      const first = set.values().next().value
      const record = first != null ? this.target.record(first) : undefined
      if (record != null) {
        this.announce(record, true)
      }
    }
  }

  private canAssign (record: TaskRecord, worker: PeerId, now: number): boolean {
    if (record.to != null && record.to !== worker.toString()) {
      return false
    }
    const failedAt = this.failedWorkers.get(record.id)?.get(worker.toString())
    if (failedAt != null && now - (this.readySince.get(record.id) ?? 0) < this.init.options.retryElsewhereMs) {
      return false
    }
    return true
  }

  /** A worker has free slots: hand it the offered task and others of the same kind, up to its slots */
  onOffer (worker: PeerId, msg: Control): void {
    const now = Date.now()
    const offered = this.target.record(msg.taskId)
    if (offered == null || offered.children != null) {
      this.init.drop('unknownTask')
      this.init.reply(worker, { type: Control.Type.DECLINE, taskId: msg.taskId, ref: msg.taskId, reason: 'unknown task' })
      return
    }
    const slots = Math.max(1, Math.min(msg.free, C.MAX_OFFER_SLOTS))
    const chosen: TaskRecord[] = []
    if (this.isReady(offered) && this.canAssign(offered, worker, now)) {
      chosen.push(offered)
    }
    for (const id of this.ready.get(specKey(offered)) ?? []) {
      if (chosen.length >= slots) {
        break
      }
      const candidate = this.target.record(id)
      if (candidate != null && candidate !== offered && this.canAssign(candidate, worker, now)) {
        chosen.push(candidate)
      }
    }
    for (const record of chosen) {
      this.target.assign(record, worker, msg.taskId)
    }
    // keep what is left as an open offer: the next tasks of this kind go straight to the worker
    const kind = specKey(offered)
    const list = (this.credits.get(kind) ?? []).filter(c => !(c.worker.equals(worker) && c.ref === msg.taskId))
    if (chosen.length < slots) {
      const ttl = msg.leaseMs > 0 ? Math.min(msg.leaseMs, 60_000) : this.init.options.offerTimeoutMs
      list.push({ worker, ref: msg.taskId, slots: slots - chosen.length, until: now + Math.floor(ttl * 0.8) })
    }
    if (list.length > 0) {
      this.credits.set(kind, list)
    } else {
      this.credits.delete(kind)
    }
  }

  /**
   * A worker that has just delivered a result is first in line for the next
   * task of each kind it has an open offer for: a task at a time keeps going
   * to the same worker, whose code and data are still warm, while tasks
   * assigned together still rotate over the workers (`assignFromCredit`)
   */
  preferWorker (worker: PeerId): void {
    for (const list of this.credits.values()) {
      const i = list.findIndex(c => c.worker.equals(worker))
      if (i > 0) {
        list.unshift(...list.splice(i, 1))
      }
    }
  }
}
