/** The output a progress bar draws on: stderr, or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean
  write(text: string): unknown
}

const BAR_WIDTH = 20

/**
 * A progress bar for long work, `[#####.....] 45% phase`. On a terminal it
 * redraws one line in place; elsewhere (a log file, CI) it prints a line
 * at every tenth of the way, so a log shows progress without thousands of
 * carriage returns.
 */
export class ProgressBar {
  readonly #stream: ProgressStream
  readonly #tty: boolean
  #lastDrawn = ''
  #lastDecile = -1
  #active = false

  constructor(stream: ProgressStream) {
    this.#stream = stream
    this.#tty = stream.isTTY === true
  }

  /** Shows `fraction` (0 to 1) of the work done, now at `label`. */
  update(fraction: number, label: string): void {
    const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0))
    const percent = Math.floor(clamped * 100)
    const line = `${bar(clamped)} ${String(percent).padStart(3)}% ${label}`
    if (this.#tty) {
      // Redraw only on a visible change: a campaign reports thousands of steps.
      if (line === this.#lastDrawn) return
      this.#lastDrawn = line
      this.#active = true
      this.#stream.write(`\r${line}\x1b[K`)
      return
    }
    const decile = Math.floor(percent / 10)
    if (decile === this.#lastDecile) return
    this.#lastDecile = decile
    this.#stream.write(`${line}\n`)
  }

  /** Ends the bar, leaving the cursor on a fresh line. */
  done(): void {
    if (this.#tty && this.#active) this.#stream.write('\n')
    this.#active = false
  }
}

function bar(fraction: number): string {
  const filled = Math.round(fraction * BAR_WIDTH)
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`
}
