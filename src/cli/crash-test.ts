import fs from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { open } from '../open.js'
import { runPowerFailureCampaign, type PowerFailureResult } from '../crash/power-failure.js'
import { runKillCampaign, type KillCampaignResult } from '../crash/process-kill.js'
import { runCorruptCampaign, type CorruptCampaignResult } from '../crash/corrupt/campaign.js'
import type { Outcome } from '../crash/corrupt/judge.js'
import { FILE_BYTES_MIN } from '../format/constants.js'
import type { ModeRequest } from '../platform/daxfile.js'
import type { SimulatedGranularity } from '../platform/simulated-domain.js'
import { randomSeed } from '../crash/random.js'
import { UsageError, modeOption, wholeNumber } from './options.js'
import { ProgressBar } from './progress.js'
import { RealFileChecker } from './real-file-check.js'
import { count } from './words.js'

/** `daxkv crash-test --dir <dir>`: the crash campaigns on this machine and filesystem. */
export function addCrashTestCommand(cli: Command): void {
  cli
    .command('crash-test')
    .description('run the simulated power-failure, process-kill and corrupt-file campaigns on this machine')
    .requiredOption('--dir <dir>', 'directory for crash images and the kill campaign (use the filesystem you want to test)')
    .option('--ops <n>', 'workload steps of each power-failure campaign (0 skips it)', wholeNumber(0), 200)
    .option('--seed <seed>', 'replay a run from its seed (default: random, printed)', wholeNumber(0, 0xffff_ffff))
    .option('--images <n>', 'random crash images per crash point when there are too many to enumerate', wholeNumber(0, 1000), 6)
    .addOption(modeOption('mode for opening real files and for the kill campaign').default('msync'))
    .option('--rounds <n>', 'rounds of the process-kill campaign (0 skips it)', wholeNumber(0), 20)
    .option('--corrupt <n>', 'damaged files opened by the corrupt-file campaign (0 skips it)', wholeNumber(0), 500)
    .action(async (options: { dir: string; ops: number; seed?: number; images: number; mode: ModeRequest; rounds: number; corrupt: number }) => {
      const seed = options.seed ?? randomSeed()
      const dir = path.resolve(options.dir)
      if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UsageError(`--dir ${options.dir} is not a directory`)
      console.error(`daxkv crash-test: seed ${seed} (replay with --seed ${seed}), in ${dir}`)
      const bar = new ProgressBar(process.stderr)
      const { ops, images, mode, rounds, corrupt } = options
      const report = await runCrashTest({ dir, ops, seed, images, mode, rounds, corrupt }, (fraction, label) =>
        bar.update(fraction, label),
      )
      bar.done()
      console.log(formatReport(report))
      if (report.violations.length > 0) process.exitCode = 1
    })
}

/** What `daxkv crash-test` runs; every field is on its command line, so a report can name the exact command. */
export interface CrashTestOptions {
  readonly dir: string
  /** Workload steps of each power-failure campaign. */
  readonly ops: number
  readonly seed: number
  /** Random crash images per crash point when the pending units are too many to enumerate. */
  readonly images: number
  /** Mode in which real files are opened: crash images, and the process-kill campaign's daxfile. */
  readonly mode: ModeRequest
  /** Rounds of the process-kill campaign (0 skips it). */
  readonly rounds: number
  /** Damaged files the corrupt-file campaign opens (0 skips it). */
  readonly corrupt: number
}

/** One violation of any campaign, ready to print. */
export interface ReportedViolation {
  readonly campaign: string
  readonly where: string
  readonly invariant: string
  readonly explanation: string
  readonly kept: readonly string[]
}

export interface CrashTestReport {
  readonly options: CrashTestOptions
  readonly powerFailure: PowerFailureResult[]
  /** Crash images written as real files and opened with open(), per granularity. */
  readonly realFiles: Record<SimulatedGranularity, number>
  kill: KillCampaignResult | undefined
  corrupt: CorruptCampaignResult | undefined
  readonly violations: ReportedViolation[]
  durationMs: number
}

/** Sampled images handed to the real-file check: one in this many of the campaign's images. */
const IMAGE_SAMPLE_EVERY = 25
/** Real files checked at each stride before the stride doubles, so the sample spans the whole run. */
const REAL_FILES_PER_STRIDE = 16

/**
 * A small simulated file that may grow, and a workload with full
 * compactions among its steps, so crashes also land in segment cleaning
 * and growth, not only in appends and rolls.
 */
const POWER_FAILURE_FILE = {
  fileBytes: 128 * 1024,
  maxFileBytes: 1024 * 1024,
  shape: { compactRatio: 0.03 },
} as const

const GRANULARITIES: readonly { granularity: SimulatedGranularity; label: string }[] = [
  { granularity: 'cache-line', label: 'cache-line (DAX protocol)' },
  { granularity: 'page', label: 'page (msync)' },
]

/**
 * Runs the simulated power-failure campaign at both granularities, opening
 * a sample of their crash images as real files in `dir` in the chosen mode,
 * then the process-kill campaign in `dir`. `progress` receives the fraction
 * done and what is running.
 */
export async function runCrashTest(options: CrashTestOptions, progress: (fraction: number, label: string) => void): Promise<CrashTestReport> {
  const started = performance.now()
  const { dir, ops, seed, images, mode, rounds, corrupt } = options
  fs.mkdirSync(dir, { recursive: true })
  await checkModeAvailable(dir, mode)
  const report: CrashTestReport = {
    options,
    powerFailure: [],
    realFiles: { 'cache-line': 0, page: 0 },
    kill: undefined,
    corrupt: undefined,
    violations: [],
    durationMs: 0,
  }
  // Rough relative costs per step and per round, measured, so the bar moves evenly.
  const weights = [ops * 8, ops * 1, rounds * 12, corrupt * 0.1]
  const total = weights.reduce((a, b) => a + b, 0)
  let before = 0
  const phase = (n: number, fraction: number, label: string): void => progress((before + weights[n]! * fraction) / total, label)

  const checker = new RealFileChecker()
  try {
    for (const [n, { granularity, label }] of ops > 0 ? GRANULARITIES.entries() : []) {
      let offered = 0
      let stride = 1
      // One working file per granularity, rewritten for each image; a failing image is copied aside.
      const imageFile = path.join(dir, `image-${granularity}.dax`)
      const result = await runPowerFailureCampaign({
        seed,
        steps: ops,
        granularity,
        ...POWER_FAILURE_FILE,
        samplesPerPoint: images,
        imageSampleEvery: IMAGE_SAMPLE_EVERY,
        onProgress: (done, r) => phase(n, done / ops, `power failure, ${granularity}: step ${done}/${ops}, ${r.images} images`),
        onImage: (image, expect) => {
          offered++
          if (offered % stride !== 0) return
          const number = ++report.realFiles[granularity]
          if (number % REAL_FILES_PER_STRIDE === 0) stride *= 2
          const problem = checkRealFile(checker, image, imageFile, mode, expect)
          if (problem === undefined) return
          // Keep the image as the crash left it: the working file now holds what recovery made of it.
          const kept = path.join(dir, `violation-image-${granularity}-${number}.dax`)
          fs.writeFileSync(kept, image)
          report.violations.push({
            campaign: `power failure, ${label}`,
            where: `real file ${number} (${mode} mode)`,
            invariant: problem.invariant,
            explanation: problem.explanation,
            kept: [kept],
          })
        },
      })
      for (const leftover of [imageFile, `${imageFile}.index`]) fs.rmSync(leftover, { force: true })
      report.powerFailure.push(result)
      for (const v of result.violations) {
        report.violations.push({
          campaign: `power failure, ${label}`,
          where: `crash point ${v.event} (${v.eventKind}), in flight: ${v.inFlight.join(', ') || 'none'}, image: ${v.image}`,
          invariant: v.invariant,
          explanation: v.explanation,
          kept: [],
        })
      }
      before += weights[n]!
    }
  } finally {
    await checker.close()
  }

  if (rounds > 0) {
    const killDir = path.join(dir, 'kill')
    const kill = await runKillCampaign({
      dir: killDir,
      rounds,
      seed,
      mode,
      onProgress: (done) => phase(2, done / rounds, `process kill: round ${done}/${rounds}`),
    })
    report.kill = kill
    for (const v of kill.violations) {
      report.violations.push({
        campaign: `process kill (${kill.mode} mode)`,
        where: `round ${v.round}`,
        invariant: v.invariant,
        explanation: v.explanation,
        kept: v.keptFiles,
      })
    }
    // The campaign removes its working files; the directory stays only when it holds kept ones.
    if (fs.readdirSync(killDir).length === 0) fs.rmdirSync(killDir)
  }
  before = weights[0]! + weights[1]! + weights[2]!
  if (corrupt > 0) await runCorruptPhase(report, path.join(dir, 'corrupt'), (fraction, label) => phase(3, fraction, label))
  progress(1, 'done')
  report.durationMs = performance.now() - started
  return report
}

/** The corrupt-file campaign, its violations added to the report; its directory stays only when it keeps violating cases. */
async function runCorruptPhase(report: CrashTestReport, dir: string, progress: (fraction: number, label: string) => void): Promise<void> {
  const { seed, corrupt: cases, mode } = report.options
  const result = await runCorruptCampaign({
    dir,
    seed,
    cases,
    mode,
    onProgress: (done, r) => progress(done / cases, `corrupt files: case ${done}/${cases}, ${count(r.violations.length, 'violation')}`),
  })
  report.corrupt = result
  for (const v of result.violations) {
    report.violations.push({
      campaign: 'corrupt file',
      where: v.case < 0 ? `the undamaged ${v.shape} store` : `case ${v.case} (${v.shape} store, ${v.damageClass}): ${v.detail}`,
      invariant: v.invariant,
      explanation: v.explanation,
      kept: v.kept,
    })
  }
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir)
}

/** Opens one crash image as a real file; undefined when it recovers to an allowed state and verifies. */
function checkRealFile(
  checker: RealFileChecker,
  image: Buffer,
  file: string,
  mode: ModeRequest,
  expect: (state: ReadonlyMap<string, Buffer>) => string | undefined,
): { invariant: string; explanation: string } | undefined {
  const recovered = checker.check(image, file, mode)
  if (!recovered.ok) return { invariant: '(4) the store opens (real file)', explanation: recovered.error }
  const explanation = expect(recovered.state)
  if (explanation !== undefined) return { invariant: 'the recovered state is allowed (real file)', explanation }
  if (recovered.problems.length > 0) return { invariant: '(4) the store verifies (real file)', explanation: recovered.problems.join('; ') }
  return undefined
}

/**
 * Fails early, with the library's own message, when `dir` cannot hold a
 * daxfile in `mode` (for example `dax` on a filesystem without DAX),
 * rather than reporting every image of the campaign as a violation.
 */
async function checkModeAvailable(dir: string, mode: ModeRequest): Promise<void> {
  const probe = path.join(dir, `.probe-${process.pid}.dax`)
  fs.rmSync(probe, { force: true })
  try {
    const db = await open(probe, { size: FILE_BYTES_MIN, mode, indexCheckpoint: false })
    await db.close()
  } finally {
    for (const leftover of [probe, `${probe}.index`]) fs.rmSync(leftover, { force: true })
  }
}

/** The command line that replays a run. */
export function reproduceCommand(options: CrashTestOptions): string {
  const { dir, ops, seed, images, mode, rounds, corrupt } = options
  return `daxkv crash-test --dir ${shellQuote(dir)} --seed ${seed} --ops ${ops} --images ${images} --mode ${mode} --rounds ${rounds} --corrupt ${corrupt}`
}

/** The summary printed at the end of a run, with every violation and how to replay it. */
export function formatReport(report: CrashTestReport): string {
  const lines: string[] = []
  const { options } = report
  const sum = (pick: (r: PowerFailureResult) => number): number => report.powerFailure.reduce((n, r) => n + pick(r), 0)
  lines.push('daxkv crash-test summary')
  for (const [n, r] of report.powerFailure.entries()) {
    lines.push(
      `  power failure, ${GRANULARITIES[n]!.label}: ${count(r.stepsRun, 'step')}, ${count(r.crashPoints, 'crash point')}, ${count(r.images, 'crash image')}, ` +
        `${count(r.recoveries, 'recovery', 'recoveries')}, ${count(r.recoveryCrashImages, 'recovery-crash image')}, ${report.realFiles[r.granularity]} opened as real files, ` +
        `${count(r.compactions, 'segment')} compacted, ${count(r.growths, 'growth')}, ${count(r.violations.length, 'violation')}, ${seconds(r.durationMs)}`,
    )
  }
  const k = report.kill
  if (k !== undefined) {
    lines.push(
      `  process kill (${k.mode} mode): ${count(k.rounds, 'round')}, ${k.roundsKilled} killed, ${k.roundsInterrupted} with steps in flight, ` +
        `${count(k.stepsAcknowledged, 'step')} acknowledged, in-flight steps ${k.inFlightApplied} applied / ${k.inFlightNotApplied} not, ` +
        `${k.reopensFromCheckpoint} reopened from the index checkpoint, ` +
        `${count(k.files, 'daxfile')}, ${count(k.violations.length, 'violation')}, ${seconds(k.durationMs)}`,
    )
  }
  if (report.corrupt !== undefined) lines.push(...corruptLines(report.corrupt))
  lines.push(
    `  crash points:          ${sum((r) => r.crashPoints)}`,
    `  crash images checked:  ${sum((r) => r.images)} (${report.realFiles['cache-line'] + report.realFiles.page} as real files in ${options.mode} mode)`,
    `  recoveries:            ${sum((r) => r.recoveries)}`,
    `  recovery-crash images: ${sum((r) => r.recoveryCrashImages)}`,
    `  kill rounds:           ${k?.rounds ?? 0}`,
    `  corrupt files:         ${report.corrupt?.cases ?? 0}`,
    `  violations:            ${report.violations.length}`,
    `  time:                  ${seconds(report.durationMs)}`,
    `  seed:                  ${options.seed}`,
  )
  for (const [i, v] of report.violations.entries()) {
    lines.push('', `violation ${i + 1}: ${v.campaign}, ${v.where}`, `  ${v.invariant}`, `  ${v.explanation}`)
    if (v.kept.length > 0) lines.push(`  kept for inspection: ${v.kept.join(', ')}`)
    lines.push(`  reproduce: ${reproduceCommand(options)}`)
    if (v.campaign.startsWith('process kill')) lines.push('  (the seed replays the workload and the kill delays; where a kill lands also depends on timing)')
    if (v.campaign === 'corrupt file') lines.push('  (the seed replays every case; the killed and copied stores also depend on timing)')
  }
  return lines.join('\n')
}

/** Outcomes in the order the summary lists them, with their short names. */
const OUTCOMES: readonly [Outcome, string][] = [
  ['refused at open', 'refused'],
  ['refused after open', 'refused later'],
  ['opened intact', 'intact'],
  ['opened, damage reported', 'reported'],
  ['opened, torn tail cut', 'torn tail'],
  ['opened, undetectable (documented)', 'undetectable'],
  ['opened, forged checkpoint believed', 'forged'],
  ['violation', 'violations'],
]

/** The corrupt-file campaign's summary: totals, then one row per damage class. */
function corruptLines(r: CorruptCampaignResult): string[] {
  const total = (o: Outcome): number => Object.values(r.table).reduce((n, row) => n + (row[o] ?? 0), 0)
  const shapes = Object.entries(r.casesPerShape).map(([shape, n]) => `${shape} ${n}`).join(', ')
  const lines = [
    `  corrupt files: ${count(r.cases, 'damaged file')} (${shapes}): ` + OUTCOMES.map(([o, name]) => `${total(o)} ${name}`).join(', ') + `, ${seconds(r.durationMs)}`,
  ]
  for (const skipped of r.basesSkipped) lines.push(`    skipped: ${skipped}`)
  const width = Math.max(...Object.keys(r.table).map((c) => c.length))
  for (const [damageClass, row] of Object.entries(r.table).sort(([a], [b]) => a.localeCompare(b))) {
    const cells = OUTCOMES.flatMap(([o, name]) => (row[o] === undefined ? [] : [`${row[o]} ${name}`]))
    lines.push(`    ${damageClass.padEnd(width)}  ${cells.join(', ')}`)
  }
  return lines
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`
}
