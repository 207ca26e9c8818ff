import fs from 'node:fs'
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import type { ModeRequest } from '../platform/daxfile.js'
import type { ImageReply, ImageRequest } from './image-worker.js'

/** A crash image recovered from a real file: its state, or why it did not open or verify. */
export type RealFileResult =
  | { readonly ok: true; readonly state: Map<string, Buffer>; readonly problems: readonly string[] }
  | { readonly ok: false; readonly error: string }

const REPLY_TIMEOUT_MS = 60_000

/**
 * Opens crash images as real files, synchronously. The power-failure
 * campaign hands each sampled image to a synchronous callback (its
 * expectation is only valid at that moment), but open() is asynchronous;
 * so a worker thread runs open() and this thread waits on a shared flag
 * until the worker has posted the result, then takes it off the port.
 */
export class RealFileChecker {
  readonly #worker: Worker
  readonly #port: MessagePort
  readonly #signal = new Int32Array(new SharedArrayBuffer(4))
  /** Files already written whole and fsynced, with their size; later images of that size overwrite them in place. */
  readonly #prepared = new Map<string, number>()

  constructor() {
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    this.#worker = new Worker(new URL('./image-worker.js', import.meta.url), {
      workerData: { port: port2, signal: this.#signal },
      transferList: [port2],
    })
    this.#worker.unref()
  }

  /** Writes `image` to `file`, opens it in `mode` and returns what recovery found. */
  check(image: Buffer, file: string, mode: ModeRequest): RealFileResult {
    writeImage(file, image, this.#prepared.get(file) !== image.length)
    this.#prepared.set(file, image.length)
    Atomics.store(this.#signal, 0, 0)
    this.#port.postMessage({ file, mode } satisfies ImageRequest)
    if (Atomics.wait(this.#signal, 0, 0, REPLY_TIMEOUT_MS) === 'timed-out') {
      return { ok: false, error: `opening ${file} did not finish within ${REPLY_TIMEOUT_MS} ms` }
    }
    const reply = receiveMessageOnPort(this.#port)?.message as ImageReply | undefined
    if (reply === undefined) return { ok: false, error: 'the image worker signalled without a reply' }
    if (!reply.ok) return reply
    const state = new Map<string, Buffer>()
    for (const [key, value] of reply.entries) state.set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength))
    return { ok: true, state, problems: reply.problems }
  }

  async close(): Promise<void> {
    this.#port.close()
    await this.#worker.terminate()
  }
}

/**
 * Writes the whole image into `file`. A new file (or one whose size
 * changes, after the simulated file grew) is fsynced, not for durability
 * but for the daxfile contract: until written back, new blocks may be
 * delayed allocations, which open() rightly refuses. Later images of the
 * same size overwrite the same allocated blocks in place, which changes no
 * block map, so they need no fsync; the mapping sees them through the page
 * cache.
 */
function writeImage(file: string, image: Buffer, fresh: boolean): void {
  const fd = fs.openSync(file, fresh ? 'w' : 'r+')
  try {
    let done = 0
    while (done < image.length) done += fs.writeSync(fd, image, done, image.length - done, done)
    if (fresh) fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}
