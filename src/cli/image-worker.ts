/**
 * The worker thread of {@link RealFileChecker} (real-file-check.ts): it
 * opens a daxfile with the public open(), which runs recovery on the real
 * file and mapping, and replies with the recovered state and what verify()
 * found. It runs in a worker because the crash campaign's image callback is
 * synchronous and open() returns a promise: the main thread blocks until
 * the reply is posted.
 */
import { workerData, type MessagePort } from 'node:worker_threads'
import { open } from '../open.js'
import type { ModeRequest } from '../platform/daxfile.js'

/** What the main thread asks for. */
export interface ImageRequest {
  readonly file: string
  readonly mode: ModeRequest
}

/** What the worker answers: the state and verify's problems, or why the file did not open. */
export type ImageReply =
  | { readonly ok: true; readonly entries: [string, Uint8Array][]; readonly problems: string[] }
  | { readonly ok: false; readonly error: string }

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array }

port.on('message', (request: ImageRequest) => {
  void recoverFile(request).then((reply) => {
    // The reply is queued on the port before the signal flips, so the main
    // thread finds it as soon as it wakes.
    port.postMessage(reply)
    Atomics.store(signal, 0, 1)
    Atomics.notify(signal, 0)
  })
})

async function recoverFile({ file, mode }: ImageRequest): Promise<ImageReply> {
  try {
    // No index checkpoint: each image is a new state of the same file, and nothing is left beside it.
    const db = await open<Buffer>(file, { create: false, mode, valueEncoding: 'binary', cacheSize: 0, indexCheckpoint: false })
    try {
      const entries: [string, Uint8Array][] = []
      for (const [key, value] of db.range()) entries.push([key as string, value])
      return { ok: true, entries, problems: db.verify().problems }
    } finally {
      await db.close()
    }
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) }
  }
}
