import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import * as C from './constants.js'
import { RESULT_DECODE_LIMITS, resultDecodeLimits, resultWithinLimits } from './limits.js'
import { Control, ResultBatch } from './pb/task.js'
import { openRecord, readRecord } from './signing.js'
import { decodeJson } from './spec.js'
import { isTerminal } from './state.js'
import type { DropReason } from './counters.js'
import type { Journal, TaskRecord } from './journal.js'
import type { Result } from './pb/task.js'
import type { ReadRecord } from './signing.js'
import type { TaskTracer } from './types.js'
import type { Logger, PeerId } from '@libp2p/interface'

/** What the result intake asks of the submitter */
export interface ResultTarget {
  record(id: string): TaskRecord | undefined
  /** whether `peer` holds the lease of this attempt of the task */
  leaseHolder(record: TaskRecord | undefined, peer: PeerId, attempt: number): boolean
  failAttempt(record: TaskRecord, reason: string): void
  /**
   * Complete the task with a result from `worker`, journaled before `ack()`
   * is called and the completion emitted (`unstage`: the attempt whose
   * staged record made it durable already)
   */
  completeResult(record: TaskRecord, output: unknown, worker: PeerId, unstage: number | undefined, ack: () => void): Promise<void>
  /** Complete the task from a result staged before a restart; resolves once journaled */
  completeStaged(record: TaskRecord, output: unknown, worker: string, attempt: number): Promise<void>
}

export interface ResultIntakeInit {
  /** this node's peer id as multihash bytes, as results name their submitter */
  ownId: Uint8Array
  /** signature domain of result batches */
  domain: string
  journal: Pick<Journal, 'busy' | 'stageResult' | 'discardStaged' | 'stagedResults'>
  channels: { sendLazy(peer: PeerId, message: Control, delayMs: number): void }
  maxOutputBytes: number
  /** takes the spans a worker returned for a traced task */
  tracer?: Pick<TaskTracer, 'adopt'>
  isStarted(): boolean
  log: Logger
  drop(reason: DropReason): void
}

/**
 * The submitter's intake of results: a signed `ResultBatch` is checked once
 * (signer, limits, the submitter it names), then each result: only the
 * lease holder's is taken, a failure fails the attempt, a success completes
 * the task once journaled, and the worker is acknowledged (lazily). A task
 * at a time takes a shorter way (`onSingleResult`): the record as received
 * is staged in the journal while its signature is checked. Workers whose
 * signature failed there are remembered (`badSigners`) and checked first.
 */
export class ResultIntake {
  private readonly init: ResultIntakeInit
  private readonly target: ResultTarget
  /** workers that sent a result whose signature failed on the staged path (newest last) */
  readonly badSigners = new Set<string>()

  constructor (init: ResultIntakeInit, target: ResultTarget) {
    this.init = init
    this.target = target
  }

  /**
   * Results that reached the journal (see `onSingleResult`) while their
   * task's record did not: each is checked as when it arrived and completes
   * its task. No event is sent for these, as for a task whose completion was
   * written just before a crash: the completion is in the task's history.
   */
  async applyStaged (): Promise<void> {
    const writes: Array<Promise<void>> = []
    for (const { taskId, attempt, bytes } of await this.init.journal.stagedResults()) {
      const record = this.target.record(taskId)
      try {
        const opened = await openRecord(bytes, this.init.domain)
        const result = ResultBatch.decode(opened.payload, { limits: RESULT_DECODE_LIMITS }).results.find(r => r.taskId === taskId && r.attempt === attempt)
        if (record != null && result?.ok === true && !isTerminal(record.state) && uint8ArrayEquals(result.submitter, this.init.ownId)) {
          const output = result.output == null ? null : decodeJson(result.output)
          this.adoptSpans(record, result)
          writes.push(this.target.completeStaged(record, output, opened.signer.toString(), result.attempt))
          continue
        }
      } catch (err: any) {
        this.init.log('staged result for %s is not usable - %e', taskId, err)
      }
      this.init.journal.discardStaged(taskId, attempt)
    }
    await Promise.all(writes)
  }

  /** A signed batch of results from a worker: one signature check, then each result on its own */
  async onResult (worker: PeerId, msg: Control): Promise<void> {
    if (msg.record == null) {
      this.init.drop('malformed')
      return
    }
    // a busy journal writes in batches, and results come in batches too: this is for a task at a time
    if (!this.init.journal.busy) {
      const single = this.singleResult(worker, msg.record)
      if (single != null) {
        await this.onSingleResult(worker, single)
        return
      }
    }
    let batch: ResultBatch
    try {
      const opened = await openRecord(msg.record, this.init.domain)
      if (!opened.signer.equals(worker)) {
        this.init.drop('badSignature')
        return
      }
      batch = ResultBatch.decode(opened.payload, { limits: RESULT_DECODE_LIMITS })
    } catch (err: any) {
      this.init.drop(err?.name === 'InvalidSignatureError' ? 'badSignature' : 'malformed')
      return
    }
    await Promise.all(batch.results.map(async result => {
      if (!uint8ArrayEquals(result.submitter, this.init.ownId) || result.taskId.length === 0) {
        this.init.drop('malformed')
        return
      }
      if (!resultWithinLimits(result, this.init.maxOutputBytes)) {
        this.init.drop('oversize')
        return
      }
      await this.onOneResult(worker, result)
    }))
  }

  /**
   * The one successful result a batch holds, for a task leased to its
   * sender, read before the signature is checked; undefined for anything else
   */
  private singleResult (worker: PeerId, bytes: Uint8Array): { read: ReadRecord, result: Result } | undefined {
    try {
      const read = readRecord(bytes)
      const { envelope, signer } = read
      if (signer == null || !signer.peerId.equals(worker) || this.badSigners.has(worker.toString())) {
        return undefined
      }
      const batch = ResultBatch.decode(envelope.payload, { limits: resultDecodeLimits(1) })
      const result = batch.results[0]
      if (batch.results.length !== 1 || !result.ok || !uint8ArrayEquals(result.submitter, this.init.ownId) || !resultWithinLimits(result, this.init.maxOutputBytes)) {
        return undefined
      }
      return this.target.leaseHolder(this.target.record(result.taskId), worker, result.attempt) ? { read, result } : undefined
    } catch {
      return undefined
    }
  }

  /**
   * One result, the case of a task at a time: the record as received is
   * written to the journal (staged, on the datastore's threads) while its
   * signature is checked here, so the task is completed once both are done
   * rather than one after the other. Its own journal entry follows in the
   * background; after a crash in between, `resume()` completes it from the
   * staged record.
   */
  private async onSingleResult (worker: PeerId, { read, result }: { read: ReadRecord, result: Result }): Promise<void> {
    // the datastore takes the write before this thread turns to the signature
    const staged = this.init.journal.stageResult(result.taskId, result.attempt, read.bytes)
    try {
      await openRecord(read, this.init.domain)
    } catch (err: any) {
      this.init.drop(err?.name === 'InvalidSignatureError' ? 'badSignature' : 'malformed')
      // a peer that sent one gets its records checked before anything is written for them
      this.badSigners.add(worker.toString())
      if (this.badSigners.size > C.MAX_BAD_SIGNERS) {
        this.badSigners.delete(this.badSigners.values().next().value as string)
      }
      // deleted once written, not before
      await staged.catch(() => {})
      this.init.journal.discardStaged(result.taskId, result.attempt)
      return
    }
    let durable = true
    try {
      await staged
    } catch (err: any) {
      this.init.log.error('journal write failed for the result of %s - %e', result.taskId, err)
      durable = false
    }
    // a result that did not complete its task (it was a duplicate, the lease moved on meanwhile, …)
    // leaves no staged copy behind
    if (!await this.onOneResult(worker, result, durable)) {
      this.init.journal.discardStaged(result.taskId, result.attempt)
    }
  }

  /**
   * Takes one result; resolves to whether it completed its task. `staged`: the
   * result record is in the journal already (see `onSingleResult`).
   */
  private async onOneResult (worker: PeerId, result: Result, staged = false): Promise<boolean> {
    // nothing waits for an acknowledgement but the worker's copy of the result: it rides with the next message
    const ack = (reason?: string): void => {
      if (this.init.isStarted()) {
        this.init.channels.sendLazy(worker, { type: Control.Type.ACK, taskId: result.taskId, attempt: result.attempt, leaseMs: 0, free: 0, reason }, C.ACK_DELAY_MS)
      }
    }
    const record = this.target.record(result.taskId)
    if (record == null) {
      this.init.drop('unknownTask')
      ack('unknown task')
      return false
    }
    if (record.state === 'completed' && record.worker === worker.toString() && record.attempts === result.attempt) {
      this.init.drop('duplicate')
      ack('duplicate')
      return false
    }
    if (!this.target.leaseHolder(record, worker, result.attempt)) {
      this.init.drop('notAssigned')
      ack('not assigned to you')
      return false
    }
    this.adoptSpans(record, result)
    if (!result.ok) {
      const code = result.code != null ? `${result.code}: ` : ''
      this.target.failAttempt(record, `${code}${result.error ?? 'failed'}`.slice(0, 2048))
      ack()
      return false
    }
    let output: unknown
    try {
      output = result.output == null ? null : decodeJson(result.output)
    } catch {
      this.target.failAttempt(record, 'malformed output: not JSON')
      ack()
      return false
    }
    await this.target.completeResult(record, output, worker, staged ? result.attempt : undefined, ack)
    return true
  }

  /** The worker's spans of a traced task go into its trace (the tracer takes them only under this node's own span) */
  private adoptSpans (record: TaskRecord, result: Result): void {
    if (record.traceparent != null && result.spans.length > 0) this.init.tracer?.adopt(record.traceparent, result.spans)
  }
}
