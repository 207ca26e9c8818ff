// Turns benchmark records into medians, ratios and target verdicts, and
// renders them: a text table for the terminal, an SVG bar chart and the
// Markdown page docs/performance.md. No dependencies.

import fs from 'node:fs'
import os from 'node:os'

export const LABELS = {
  'daxkv-msync': 'daxkv msync',
  'daxkv-forced-dax': 'daxkv forced-dax',
  lmdb: 'lmdb',
  'classic-level': 'classic-level',
  'better-sqlite3': 'better-sqlite3',
}
const PEERS = ['lmdb', 'classic-level', 'better-sqlite3']
const SHORT = { lmdb: 'lmdb', 'classic-level': 'level', 'better-sqlite3': 'sqlite' }
const COLORS = {
  'daxkv-msync': '#1f6feb',
  'daxkv-forced-dax': '#8ec5ff',
  lmdb: '#d4732a',
  'classic-level': '#3a9d5d',
  'better-sqlite3': '#9b59b6',
  'pwrite+fdatasync': '#9a9a9a',
}

/** Rows measured in operations per second (higher is better). `peerRow`: the peers' row this daxkv-only row compares with. */
const OPS_ROWS = [
  { id: 'put-100', label: 'durable put, 100 B (daxkv: putSync)', chart: 'durable put, 100 B' },
  { id: 'put-100-await', label: 'durable put, 100 B (daxkv: await put)', peerRow: 'put-100' },
  { id: 'put-4k', label: 'durable put, 4 KiB (daxkv: putSync)', chart: 'durable put, 4 KiB' },
  { id: 'put-4k-await', label: 'durable put, 4 KiB (daxkv: await put)', peerRow: 'put-4k' },
  { id: 'group-100', label: 'group commit, 64 writers, 100 B', chart: '64 writers, 100 B' },
  { id: 'group-4k', label: 'group commit, 64 writers, 4 KiB', chart: '64 writers, 4 KiB' },
  { id: 'bulk', label: 'bulk load, batches of 1000 (keys/s)', chart: 'bulk load' },
  { id: 'get', label: 'random get', chart: 'random get' },
  { id: 'scan', label: 'range scan, 10k keys (keys/s)', chart: 'range scan' },
]
const MB = 1e6
/** Rows where lower is better. */
const COST_ROWS = [
  { id: 'open-ms', label: 'open after clean close (ms)', unit: 1 },
  { id: 'recover-ms', label: 'open after kill -9 (ms)', unit: 1 },
  { id: 'replay-ms', label: 'open, whole log replayed (ms)', unit: 1 },
  { id: 'disk-allocated', label: 'on disk, allocated (MB)', unit: MB },
  { id: 'disk-apparent', label: 'on disk, apparent size (MB)', unit: MB },
  { id: 'rss', label: 'RSS after a full get pass (MB)', unit: MB },
  { id: 'heap-used', label: 'heapUsed after a full get pass (MB)', unit: MB },
  { id: 'array-buffers', label: 'arrayBuffers after a full get pass (MB)', unit: MB },
  { id: 'first-scan-ms', label: 'first range scan after open (ms)', unit: 1 },
]

export function fmt(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-'
  const a = Math.abs(n)
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e8 ? 0 : 2)}M`
  if (a >= 1e4) return `${(n / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`
  if (a >= 100) return n.toFixed(0)
  return n.toFixed(a >= 10 ? 1 : 2)
}

/** A count such as 1M, 50k, 10k. */
export const count = (n) => (n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : String(n))

const ratio = (r) => (typeof r === 'number' && Number.isFinite(r) ? `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2)}×` : '-')

function median(values) {
  if (values.length === 0) return undefined
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

// ---------------------------------------------------------------------------
// Machine description

function mountOf(dir) {
  let real = dir
  try {
    real = fs.realpathSync(dir)
  } catch {}
  let best = { mountpoint: '/', fstype: 'unknown', source: 'unknown', options: '' }
  try {
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [source, mountpoint, fstype, options] = line.split(' ')
      if (mountpoint === undefined) continue
      const mp = mountpoint.replace(/\\040/g, ' ')
      const inside = real === mp || real.startsWith(mp.endsWith('/') ? mp : `${mp}/`)
      if (inside && mp.length >= best.mountpoint.length) best = { mountpoint: mp, fstype, source, options }
    }
  } catch {}
  return { dir, real, ...best }
}

export function machine(dirs) {
  let cpu = os.cpus()[0]?.model ?? 'unknown'
  let flags = []
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8')
    cpu = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? cpu
    flags = (/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(' ')
  } catch {}
  return {
    cpu,
    cores: os.cpus().length,
    cacheFlushInstructions: ['clwb', 'clflushopt', 'clflush'].filter((f) => flags.includes(f)),
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    arch: process.arch,
    dirs: dirs.map(mountOf),
  }
}

// ---------------------------------------------------------------------------
// Medians, ratios, targets

export function summarize(records, dirs, stores, params) {
  const runs = [...new Set(records.map((r) => r.run))]
  const value = (run, dir, store, workload) => records.find((r) => r.run === run && r.dir === dir && r.store === store && r.workload === workload)?.value
  const medians = {}
  for (const dir of dirs) {
    medians[dir] = {}
    for (const store of [...stores, 'pwrite+fdatasync']) {
      const m = {}
      for (const r of records) if (r.dir === dir && r.store === store) (m[r.workload] ??= []).push(r.value)
      medians[dir][store] = Object.fromEntries(Object.entries(m).map(([w, v]) => [w, median(v)]))
    }
  }
  /** Median over runs of the per-run ratio a / b (both measured in the same run). */
  const ratioOf = (dir, storeA, workloadA, storeB, workloadB) => {
    const per = []
    for (const run of runs) {
      const a = value(run, dir, storeA, workloadA)
      const b = typeof storeB === 'function' ? storeB(run) : value(run, dir, storeB, workloadB)
      if (a !== undefined && b !== undefined && b > 0) per.push(a / b)
    }
    return median(per)
  }
  const bestPeer = (dir, workload) => (run) => {
    const v = PEERS.filter((p) => stores.includes(p)).map((p) => value(run, dir, p, workload)).filter((x) => x !== undefined)
    return v.length === 0 ? undefined : Math.max(...v)
  }
  const ratios = {}
  for (const dir of dirs) {
    ratios[dir] = {}
    for (const row of OPS_ROWS) {
      const peerRow = row.peerRow ?? row.id
      const r = {}
      for (const peer of PEERS) if (stores.includes(peer)) r[peer] = ratioOf(dir, 'daxkv-msync', row.id, peer, peerRow)
      r.forcedDaxBestPeer = ratioOf(dir, 'daxkv-forced-dax', row.id, bestPeer(dir, peerRow))
      r.msyncBestPeer = ratioOf(dir, 'daxkv-msync', row.id, bestPeer(dir, peerRow))
      ratios[dir][row.id] = r
    }
  }
  return { medians, ratios, targets: targets(dirs, stores, medians, ratioOf, bestPeer, params) }
}

function fsOf(dir) {
  return mountOf(dir).fstype
}

function targets(dirs, stores, medians, ratioOf, bestPeer, { keys, autoGrowSize }) {
  const out = []
  const has = (s) => stores.includes(s)
  const tmpfs = dirs.filter((d) => fsOf(d) === 'tmpfs')
  const disks = dirs.filter((d) => fsOf(d) !== 'tmpfs')
  const med = (dir, store, w) => medians[dir]?.[store]?.[w]
  const verdict = (ok) => (ok === undefined ? 'not measured' : ok ? 'met' : 'not met')
  const bestPeerName = (dir, w) => {
    let best
    for (const p of PEERS) if (has(p) && (best === undefined || (med(dir, p, w) ?? 0) > (med(dir, best, w) ?? 0))) best = p
    return best
  }
  for (const dir of tmpfs) {
    if (!has('daxkv-msync')) break
    const r = ratioOf(dir, 'daxkv-msync', 'put-100', bestPeer(dir, 'put-100'))
    const peer = bestPeerName(dir, 'put-100')
    out.push({
      target: `durable single put on tmpfs ≥ 2× the best peer (${dir})`,
      measured: `daxkv msync putSync ${fmt(med(dir, 'daxkv-msync', 'put-100'))}/s (await put ${fmt(med(dir, 'daxkv-msync', 'put-100-await'))}/s); best peer ${LABELS[peer] ?? '-'} ${fmt(med(dir, peer, 'put-100'))}/s: ${ratio(r)}`,
      verdict: verdict(r === undefined ? undefined : r >= 2),
    })
  }
  for (const dir of disks) {
    if (!has('daxkv-msync')) break
    const r = ratioOf(dir, 'daxkv-msync', 'put-100', bestPeer(dir, 'put-100'))
    const peer = bestPeerName(dir, 'put-100')
    const limit = ratioOf(dir, 'daxkv-msync', 'put-100', 'pwrite+fdatasync', 'syncprobe')
    out.push({
      target: `durable single put on ${fsOf(dir)} ≥ the best peer and ≥ 0.8× the one-sync-per-op limit (${dir})`,
      measured: `daxkv msync putSync ${fmt(med(dir, 'daxkv-msync', 'put-100'))}/s (await put ${fmt(med(dir, 'daxkv-msync', 'put-100-await'))}/s); best peer ${LABELS[peer] ?? '-'} ${fmt(med(dir, peer, 'put-100'))}/s: ${ratio(r)}; 4 KiB pwrite+fdatasync ${fmt(med(dir, 'pwrite+fdatasync', 'syncprobe'))}/s: ${ratio(limit)}`,
      verdict: verdict(r === undefined || limit === undefined ? undefined : r >= 1 && limit >= 0.8),
    })
  }
  for (const dir of disks) {
    if (!has('daxkv-msync')) break
    const r = ratioOf(dir, 'daxkv-msync', 'group-100', 'daxkv-msync', 'put-100')
    out.push({
      target: `group commit, 64 writers, on ${fsOf(dir)} ≥ 20× daxkv's single-put rate (${dir})`,
      measured: `${fmt(med(dir, 'daxkv-msync', 'group-100'))}/s vs putSync ${fmt(med(dir, 'daxkv-msync', 'put-100'))}/s: ${ratio(r)}`,
      verdict: verdict(r === undefined ? undefined : r >= 20),
    })
  }
  for (const dir of tmpfs) {
    if (!has('daxkv-forced-dax')) break
    const v = med(dir, 'daxkv-forced-dax', 'put-100')
    out.push({
      target: `forced-dax durable single put on tmpfs ≥ 0.5 × 1.9M/s = 950k/s (${dir})`,
      measured: `putSync ${fmt(v)}/s (await put ${fmt(med(dir, 'daxkv-forced-dax', 'put-100-await'))}/s): ${ratio(v / 1.9e6)} of 1.9M/s`,
      verdict: verdict(v === undefined ? undefined : v >= 0.95e6),
    })
  }
  if (has('daxkv-msync') && has('lmdb')) {
    for (const dir of dirs) {
      const r = ratioOf(dir, 'daxkv-msync', 'bulk', 'lmdb', 'bulk')
      out.push({
        target: `bulk load ≥ 2× lmdb (${dir})`,
        measured: `${fmt(med(dir, 'daxkv-msync', 'bulk'))} vs ${fmt(med(dir, 'lmdb', 'bulk'))} keys/s: ${ratio(r)}`,
        verdict: verdict(r === undefined ? undefined : r >= 2),
      })
    }
    for (const dir of dirs) {
      const r = ratioOf(dir, 'daxkv-msync', 'get', 'lmdb', 'get')
      out.push({
        target: `random get ≥ 4× lmdb \`get\` (${dir})`,
        measured: `${fmt(med(dir, 'daxkv-msync', 'get'))} vs ${fmt(med(dir, 'lmdb', 'get'))} gets/s: ${ratio(r)}`,
        verdict: verdict(r === undefined ? undefined : r >= 4),
      })
    }
  }
  if (has('daxkv-msync')) {
    for (const dir of dirs) {
      const v = med(dir, 'daxkv-msync', 'open-ms')
      out.push({ target: `open after clean close ≤ 50 ms (${dir})`, measured: `${fmt(v)} ms (to the first get)`, verdict: verdict(v === undefined ? undefined : v <= 50) })
    }
    for (const dir of dirs) {
      const clean = med(dir, 'daxkv-msync', 'scan-rate-clean')
      const crash = med(dir, 'daxkv-msync', 'scan-rate-crash')
      const replay = med(dir, 'daxkv-msync', 'scan-rate-replay')
      const replayed = med(dir, 'daxkv-msync', 'replayed-after-kill')
      const worst = [clean, crash].filter((x) => x !== undefined)
      out.push({
        target: `recovery scan ≥ 1 GB/s (${dir})`,
        measured:
          `bytesScanned / durationMs: ${fmt(clean / MB)} MB/s after a clean close, ${fmt(crash / MB)} MB/s after kill -9 ` +
          `(every batch validated, ${replayed === undefined ? 'the whole log' : `${fmt(replayed)} records written after the index checkpoint`} replayed); ` +
          `${fmt(replay / MB)} MB/s replaying the whole log into the index (no checkpoint)`,
        verdict: verdict(worst.length === 0 ? undefined : Math.min(...worst) >= 1e9),
      })
    }
    const grown = dirs.map((d) => med(d, 'daxkv-msync', 'autogrow-allocated')).filter((x) => x !== undefined)
    const sidecar = dirs.map((d) => med(d, 'daxkv-msync', 'autogrow-checkpoint')).filter((x) => x !== undefined)
    const used = dirs.map((d) => med(d, 'daxkv-msync', 'used-bytes')).filter((x) => x !== undefined)
    const pre = dirs.map((d) => med(d, 'daxkv-msync', 'disk-allocated')).filter((x) => x !== undefined)
    out.push({
      target: `file size for ${count(keys)} keys × 100 B ≤ 130 MB`,
      measured:
        `${grown.length ? fmt(Math.max(...grown) / MB) : '-'} MB: the file grown by autoGrow from ${autoGrowSize}` +
        `${sidecar.length ? `, of which ${fmt(Math.max(...sidecar) / MB)} MB is the index checkpoint` : ''}; ` +
        `log bytes in use ${used.length ? fmt(Math.max(...used) / MB) : '-'} MB; the 512 MiB file of the other rows allocates ${pre.length ? fmt(Math.max(...pre) / MB) : '-'} MB`,
      verdict: verdict(grown.length === 0 ? undefined : Math.max(...grown) <= 130e6),
    })
  }
  return out
}

// ---------------------------------------------------------------------------
// Tables

function tableModel(results, dir) {
  const { medians, ratios } = results.summary
  const stores = Object.keys(results.settings)
  const peers = PEERS.filter((p) => stores.includes(p))
  // forced-dax against the best peer only where every store is as (non-)durable: on tmpfs.
  const fdax = stores.includes('daxkv-forced-dax') && dirTitle(results, dir).fs === 'tmpfs'
  const header = ['ops/s (higher is better)', ...stores.map((s) => LABELS[s]), ...peers.map((p) => `msync÷${SHORT[p]}`), ...(fdax ? ['f-dax÷best'] : [])]
  const rows = []
  for (const row of OPS_ROWS) {
    const cells = stores.map((s) => {
      if (row.peerRow !== undefined && !s.startsWith('daxkv')) return ''
      return fmt(medians[dir]?.[s]?.[row.id])
    })
    const r = ratios[dir]?.[row.id] ?? {}
    rows.push([row.label, ...cells, ...peers.map((p) => ratio(r[p])), ...(fdax ? [ratio(r.forcedDaxBestPeer)] : [])])
  }
  const costHeader = ['lower is better', ...stores.map((s) => LABELS[s])]
  const costRows = COST_ROWS.map((row) => [row.label, ...stores.map((s) => fmt(medians[dir]?.[s]?.[row.id] / row.unit))])
  return { header, rows, costHeader, costRows }
}

function dirTitle(results, dir) {
  const m = results.machine.dirs.find((d) => d.dir === dir)
  const probe = results.summary.medians[dir]?.['pwrite+fdatasync']?.syncprobe
  return { fs: m?.fstype ?? '?', text: `${dir} (${m?.fstype ?? '?'}${m?.options?.split(',').includes('dax') ? ', dax' : ''}); one sync per op, 4 KiB pwrite + fdatasync: ${fmt(probe)} ops/s` }
}

function textTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

function mdTable(header, rows, numeric = true) {
  const esc = (c) => String(c).replace(/\|/g, '\\|')
  return [`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (i === 0 || !numeric ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n')
}

export function renderTable(results) {
  const parts = []
  for (const dir of results.machine.dirs.map((d) => d.dir)) {
    const t = tableModel(results, dir)
    parts.push(`== ${dirTitle(results, dir).text}`, textTable(t.header, t.rows), '', textTable(t.costHeader, t.costRows), '')
  }
  parts.push('== targets')
  for (const t of results.summary.targets) parts.push(`[${t.verdict}] ${t.target}\n    ${t.measured}`)
  return parts.join('\n')
}

// ---------------------------------------------------------------------------
// SVG chart: one panel per directory, one group of bars per workload, log scale

const axisLabel = (t) => (t >= 1e6 ? `${t / 1e6}M` : t >= 1e3 ? `${t / 1e3}k` : String(t))
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function renderSvg(results) {
  const dirs = results.machine.dirs.map((d) => d.dir)
  const stores = Object.keys(results.settings)
  const { medians } = results.summary
  const rows = OPS_ROWS.filter((r) => r.chart !== undefined)
  const series = (row) => [...stores, ...(row.id.startsWith('put-') ? ['pwrite+fdatasync'] : [])]
  const valueOf = (dir, store, row) => (store === 'pwrite+fdatasync' ? medians[dir]?.[store]?.syncprobe : medians[dir]?.[store]?.[row.id])
  const all = []
  for (const dir of dirs) for (const row of rows) for (const s of series(row)) {
    const v = valueOf(dir, s, row)
    if (v > 0) all.push(v)
  }
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 1e3)))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 1e4)))
  const bar = 11
  const gap = 14
  const labelW = 150
  const panelW = 420
  const panelGap = 30
  const top = 70
  const groupH = (row) => series(row).length * bar + gap
  const plotH = rows.reduce((h, r) => h + groupH(r), 0)
  const width = Math.max(860, labelW + dirs.length * (panelW + panelGap) + 10)
  const legend = [...stores, 'pwrite+fdatasync'].map((s) => ({
    s,
    name: s === 'pwrite+fdatasync' ? 'one sync per op (4 KiB pwrite + fdatasync)' : s === 'daxkv-forced-dax' ? 'daxkv forced-dax (not power-fail durable here)' : LABELS[s],
  }))
  let lx = 10
  let ly = top + plotH + 34
  for (const item of legend) {
    const w = 28 + item.name.length * 6.3
    if (lx + w > width - 10) {
      lx = 10
      ly += 18
    }
    Object.assign(item, { x: lx, y: ly })
    lx += w
  }
  const height = ly + 36
  const x = (v) => (Math.log10(v / lo) / Math.log10(hi / lo)) * (panelW - 50)
  const o = []
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`)
  o.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  o.push(`<text x="10" y="20" font-size="15" font-weight="bold">daxkv and peers: operations per second (log scale), medians of ${results.params.runs} runs${results.params.loadRuns !== results.params.runs ? ` (${results.params.loadRuns} for bulk load, get, scan)` : ''}</text>`)
  o.push(`<text x="10" y="38" fill="#555">${esc(`${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.generated.slice(0, 10)}; ${count(results.params.keys)} keys for bulk load, get and scan`)}</text>`)
  dirs.forEach((dir, p) => {
    const x0 = labelW + p * (panelW + panelGap)
    const title = dirTitle(results, dir)
    o.push(`<text x="${x0}" y="${top - 14}" font-size="13" font-weight="bold">${esc(`${dir} (${title.fs})`)}</text>`)
    for (let t = lo; t <= hi; t *= 10) {
      const gx = x0 + x(t)
      o.push(`<line x1="${gx.toFixed(1)}" y1="${top - 4}" x2="${gx.toFixed(1)}" y2="${top + plotH}" stroke="#e3e3e3"/>`)
      o.push(`<text x="${gx.toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle" fill="#555">${axisLabel(t)}</text>`)
    }
    let y = top
    for (const row of rows) {
      if (p === 0) o.push(`<text x="${labelW - 8}" y="${(y + (series(row).length * bar) / 2 + 4).toFixed(1)}" text-anchor="end" font-weight="bold">${esc(row.chart)}</text>`)
      for (const s of series(row)) {
        const v = valueOf(dir, s, row)
        if (v > 0) {
          const w = Math.max(1, x(Math.max(v, lo)))
          o.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${COLORS[s]}"><title>${esc(`${LABELS[s] ?? '4 KiB pwrite+fdatasync'}: ${fmt(v)}/s`)}</title></rect>`)
          o.push(`<text x="${(x0 + w + 3).toFixed(1)}" y="${y + bar - 3}" font-size="9" fill="#333">${fmt(v)}</text>`)
        } else {
          o.push(`<text x="${x0 + 3}" y="${y + bar - 3}" font-size="9" fill="#999">n/a</text>`)
        }
        y += bar
      }
      y += gap
    }
  })
  for (const item of legend) {
    o.push(`<rect x="${item.x}" y="${item.y}" width="12" height="10" fill="${COLORS[item.s]}"/>`)
    o.push(`<text x="${item.x + 16}" y="${item.y + 9}">${esc(item.name)}</text>`)
  }
  o.push(`<text x="10" y="${height - 6}" fill="#555">durable put rows: daxkv bars are putSync; group commit: 64 concurrent writers each awaiting a durable put</text>`)
  o.push('</svg>')
  return o.join('\n') + '\n'
}

// ---------------------------------------------------------------------------
// docs/performance.md

export function renderMarkdown(results, resultsPath) {
  const m = results.machine
  const dirs = m.dirs.map((d) => d.dir)
  const p = results.params
  const L = []
  L.push('# Performance')
  L.push('')
  L.push(
    `This page is generated by \`npm run bench\` (\`test/bench/\`); do not edit it by hand, run the benchmark again. ` +
      `These figures are from a full run on ${results.generated.slice(0, 10)} (${results.elapsedSec} s) of daxkv at commit ${results.versions.daxkvCommit ?? '?'}` +
      `${results.versions.daxkvSrcModified ? ` plus ${results.versions.daxkvSrcModified} uncommitted file(s) under src/ and native/` : ''}: ` +
      `each figure is the median of ${p.runs} runs (${p.loadRuns} for the ${count(p.keys)}-key workloads: bulk load, get, scan, open, size and memory), ` +
      `each measurement in a fresh Node process. The raw numbers are in [\`${resultsPath}\`](${resultsPath}).`,
  )
  L.push('')
  L.push(
    'The machine is small and shared (2 cores, other work running), so single figures move by tens of percent from run to run. ' +
      'Compare the stores within one run, and read ratios (each computed within one run, then the median taken) rather than absolute numbers.',
  )
  L.push('')
  L.push('## Targets')
  L.push('')
  L.push(mdTable(['target', 'measured', 'verdict'], results.summary.targets.map((t) => [t.target, t.measured, t.verdict === 'met' ? '**met**' : t.verdict]), false))
  L.push('')
  L.push('## Machine')
  L.push('')
  L.push(`- CPU: ${m.cpu}, ${m.cores} cores (${m.arch}); cache-line flush instructions: ${m.cacheFlushInstructions.join(', ') || 'none'}`)
  L.push(`- memory: ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB`)
  L.push(`- kernel: ${m.kernel}`)
  L.push(`- Node ${m.node}; daxkv ${results.versions.daxkv}, lmdb ${results.versions.lmdb}, classic-level ${results.versions['classic-level']}, better-sqlite3 ${results.versions['better-sqlite3']}`)
  for (const d of m.dirs) L.push(`- \`${d.dir}\`: ${d.fstype} on ${d.source} (mounted at \`${d.mountpoint}\`, options \`${d.options}\`)`)
  L.push('')
  L.push('## Results')
  L.push('')
  L.push('![chart](performance.svg)')
  L.push('')
  for (const dir of dirs) {
    const t = tableModel(results, dir)
    L.push(`### ${dirTitle(results, dir).text}`)
    L.push('')
    L.push(mdTable(t.header, t.rows))
    L.push('')
    L.push(mdTable(t.costHeader, t.costRows))
    L.push('')
  }
  L.push(
    'Ratio columns: `msync÷peer` is daxkv in msync mode divided by that peer (above 1: daxkv is faster); `f-dax÷best` is daxkv in forced-dax mode divided by the fastest peer of the row. ' +
      'The `await put` rows compare with the peers’ durable put above them (the peers have one durable-put API each). ' +
      'On tmpfs nothing survives a power failure, so every store there measures the cost of its commit protocol; on a disk, the forced-dax column ' +
      'is not durable at all (cache-line flushes reach the page cache, nothing reaches the disk) and has no ratio column.',
  )
  L.push('')
  if (results.autoGrow.length > 0) {
    L.push('### autoGrow')
    L.push('')
    for (const a of results.autoGrow) {
      if (a.error !== undefined) L.push(`- \`${a.dir}\`: failed: ${a.error}`)
      else
        L.push(
          `- \`${a.dir}\`: ${count(p.keys)} keys loaded into a daxfile created with \`size: '${p.autoGrowSize}'\`: ${a.ok ? 'correct' : '**wrong**'} ` +
            `(${a.check?.keys} keys after reopening, ${a.check?.wrongOrMissing} of ${a.check?.sampled} sampled values wrong or missing), ` +
            `${a.growths} growths to ${fmt(a.fileBytes / MB)} MB (${fmt(a.usedBytes / MB)} MB of log in use), ${fmt(a.opsPerSec)} keys/s including growth.`,
        )
    }
    L.push('')
  }
  L.push('## What is measured')
  L.push('')
  L.push(`Keys are 16-byte strings (a scrambled integer, zero-padded to 16 decimal digits, so inserts arrive in random order), made before the timed loops; values are incompressible random bytes, ${p.valueSize} B unless noted (${p.bigValueSize} B in the 4 KiB rows). Binary values everywhere. Each timed loop follows a short untimed warm-up.`)
  L.push('')
  L.push(`1. **Durable put**: one writer, each put acknowledged durable before the next is issued; ${p.putSeconds} s or ${count(p.maxOps[100])} (4 KiB: ${count(p.maxOps[4096])}) puts, whichever comes first, into an empty store. daxkv: \`putSync\`, and \`await db.put\` as a second row; lmdb: \`await db.put()\` then \`await db.flushed\`; classic-level: \`await db.put(k, v, { sync: true })\`; better-sqlite3: one autocommit \`INSERT OR REPLACE\`.`)
  L.push(`2. **Group commit**: ${p.writers} async loops, each issuing its next durable put when the previous resolves (better-sqlite3 is synchronous: the loops run, but every statement commits on its own).`)
  L.push(`3. **Bulk load**: ${count(p.keys)} keys in batches of ${p.batch}, each batch atomic and durable before the next (daxkv \`batchSync\`; lmdb: ${p.batch} \`put\`s in one tick, one transaction, then \`flushed\`; classic-level \`batch(ops, { sync: true })\`; better-sqlite3 one transaction per batch). daxkv files are created with \`size: '${p.daxkvSize}'\`, so growth is not measured; the autoGrow section measures it.`)
  L.push(`4. **Random get**: uniform random keys among the ${count(p.keys)}, in a new process after the load (after a full pass over all keys), for ${p.readSeconds} s. Default settings for every store; daxkv's value cache does not hold binary values, so every daxkv get reads the mapping.`)
  L.push(`5. **Range scan**: ${count(p.scanKeys)} consecutive entries (key and value) from a random start, repeated for ${p.readSeconds} s; the figure is entries per second. The first scan after open is timed on its own (\`first range scan\` row): daxkv builds its ordered key view on the first scan.`)
  L.push(`6. **Open**: time from \`open\` to the first \`get\` returning, in a new process, after a clean close; and after \`kill -9\` of a process running ${p.writers} writers of durable puts (killed ${p.killAfterMs} ms after its writes were flowing). The recovery scan rate is daxkv’s own report: \`db.recovery.bytesScanned / db.recovery.durationMs\` (log scan and CRC32C of every batch, plus the replay into the index of what follows the index checkpoint); the \`open, whole log replayed\` row opens the same store with \`indexCheckpoint: false\`, which replays every record into the index.`)
  L.push('7. **Size and memory**: bytes of the store’s files for the loaded keys (allocated: `st_blocks × 512`; apparent: `st_size`; a directory’s total for classic-level, database + WAL for better-sqlite3), and `rss` / `heapUsed` (after a GC) in the reading process after the full get pass. RSS counts the mapped file pages the process touched, for daxkv and lmdb alike; daxkv’s index is typed arrays, counted in `arrayBuffers`, not in `heapUsed`.')
  L.push('')
  L.push('The one-sync-per-op limit is a 4 KiB `pwrite` + `fdatasync` per operation on a preallocated file in the same directory: the ceiling of a store that issues one sync per durable write.')
  L.push('')
  L.push('## Store settings')
  L.push('')
  for (const [s, text] of Object.entries(results.settings)) L.push(`- **${LABELS[s]}**: ${text}`)
  L.push('')
  L.push(
    '**forced-dax** issues cache-line flushes and fences as daxkv does on DAX persistent memory, but here on ordinary memory (tmpfs, the page cache): ' +
      'it measures the cost of the dax commit protocol, and it is *not* durable against power failure on this hardware. Only `msync` rows are durable on non-DAX storage.',
  )
  L.push('')
  if (results.failures.length > 0) {
    L.push('## Problems seen during the run')
    L.push('')
    for (const f of results.failures) L.push(`- ${f}`)
    L.push('')
  }
  L.push(...GAPS)
  L.push('## Reproduce')
  L.push('')
  L.push('```sh')
  L.push('npm ci                                  # builds daxkv and the peers (better-sqlite3 compiles from source)')
  L.push('npm run bench                           # /dev/shm and the temp dir, 3 runs, rewrites this page')
  L.push('npm run bench -- --dir /path --runs 5   # other directories (repeat --dir), more runs')
  L.push('npm run bench -- --quick                # smoke run: 50k keys, one run, docs untouched')
  L.push('```')
  L.push('')
  L.push(
    '`--load-runs N` sets the runs of the 1M-key workloads (default 2, to keep a full run near 15 minutes; the disk loads of the peers are slow); ' +
      '`--stores daxkv-msync,lmdb` limits the stores; `--out FILE` writes the JSON elsewhere; `--no-docs` leaves this page alone; ' +
      '`--report FILE` re-renders this page from a saved JSON without measuring. `npm run bench -- --help` lists the options.',
  )
  L.push('')
  return L.join('\n')
}

/**
 * Where the missed targets come from and what would close them: written by
 * hand from profiles (node --cpu-prof) of the daxkv workers, not generated.
 */
const GAPS = [
  '## Where the misses come from',
  '',
  'Written from CPU profiles of the daxkv workers (`node --cpu-prof`), not generated; the figures above are.',
  '',
  '- **Open and recovery.** A clean close writes the index (two hash tables of record locations, about 16 MB for 1M keys) and the per-segment accounting to `<daxfile>.index`; open still validates every batch of the log (CRC32C and record structure, about 30 ms for 128 MB, most of it first-touch page faults on the mapping) but replays into the index only the batches written after the checkpoint, so a kill -9 costs the replay of what the killed run wrote. Without a checkpoint (a store never closed cleanly, or copied without its `.index`) the whole log is replayed at about 0.6 GB/s: the time goes to inserting every record into the hash table (a cache miss per insert into a 16 MB table) and to growing the table. Writing the checkpoint periodically, not only at close, would bound that case too.',
  '- **First range scan.** The ordered view is built on the first scan (a sort of every key, read back from the mapping); later scans run at about 1M keys/s. Keeping the ordered view in the checkpoint removes that cost after a clean close.',
  '- **Random get (2× lmdb, target 4×).** Per get: turning the key into bytes, hashing it, one probe of the index (location and hash side by side), a byte compare with the key in the record, and a copy of the value into a new Buffer. With 1M keys, the probe and the record are each a cache and TLB miss (the key space is far larger than the caches); with a hot set of 10k keys the same code does about 4M gets/s. A view into the mapping instead of a copy (lmdb-js `getBinaryFast`) would save the copy, but a caller could then write into the daxfile outside the persistence domain, so daxkv does not offer one.',
  '- **forced-dax single put (0.37–0.39× of libpmemlog across runs, target 0.5×).** A durable put flushes three or four cache lines and fences twice (data, then marker); both steps are now one native call each. Each call into the addon costs about 50 ns of argument handling alone (a fence with no arguments costs 8 ns), and a put makes four (two persists, two CRC32C calls). The rest is JavaScript per put: encoding the batch, copying it into the mapping, and publishing to the index (a hash-table update that misses the cache with 1M keys). libpmemlog appends to a log with no index at all. One CRC32C call over header and payload (a format change, or a two-range call in the addon), encoding straight into the mapping, and fewer allocations per put are the next steps.',
  '- **File size (162 MB for 1M × 100 B, of which 16.8 MB is the index checkpoint).** Each record takes 128 bytes in the log (8-byte header, 16-byte key, 100-byte value, padded to 8 bytes), so the log itself is 128 MB; growing by a quarter at a time and the reserved segment add headroom. Unaligned records inside a batch (a format change) would save 4 MB here; a file created at its final size has no growth headroom.',
  '',
]
