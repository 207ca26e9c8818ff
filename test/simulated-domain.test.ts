/**
 * The simulated persistence domain: what is durable when, at which
 * granularity, and which images a power failure can leave. The crash tests
 * trust these semantics, so they are pinned down here.
 */
import { describe, expect, it } from 'vitest'
import { SimulatedDomain, type SimulatedGranularity } from '../src/platform/simulated-domain.js'
import { below, random, randomBytes, seedNote, SEED } from './helpers.js'

const SIZE = 64 * 1024
const PAGE = 4096
const LINE = 64

function bytesAt(image: Buffer, offset: number, length: number): Buffer {
  return image.subarray(offset, offset + length)
}

describe.each(['cache-line', 'page'] as const)('SimulatedDomain (%s granularity)', (granularity: SimulatedGranularity) => {
  const unit = granularity === 'cache-line' ? 8 : PAGE

  it('a store is visible in the live image at once but durable only after flush and drain', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    const data = Buffer.from('hello, persistent world!')
    domain.write(1000, data)
    expect(bytesAt(domain.view(1000, data.length), 0, data.length).equals(data)).toBe(true)
    expect(bytesAt(domain.liveImage(), 1000, data.length).equals(data)).toBe(true)
    expect(domain.durableImage().every((b) => b === 0)).toBe(true)
    domain.flush(1000, data.length)
    expect(domain.durableImage().every((b) => b === 0)).toBe(true)
    domain.drain()
    expect(bytesAt(domain.durableImage(), 1000, data.length).equals(data)).toBe(true)
    expect(domain.pendingUnits()).toEqual([])
  })

  it('a flush without a drain makes nothing durable, and leaves the flushed units pending', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    domain.write(8192, Buffer.alloc(16, 0xab))
    domain.flush(8192, 16)
    expect(domain.durableImage().every((b) => b === 0)).toBe(true)
    const pending = domain.pendingUnits()
    expect(pending.length).toBeGreaterThan(0)
    for (const p of pending) {
      expect(p.offset % unit).toBe(0)
      expect(p.bytes.length).toBe(unit)
    }
  })

  it('a drain without a flush makes nothing durable', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    domain.write(0, Buffer.alloc(100, 1))
    domain.drain()
    expect(domain.durableImage().every((b) => b === 0)).toBe(true)
    domain.persist(0, 100)
    expect(bytesAt(domain.durableImage(), 0, 100).every((b) => b === 1)).toBe(true)
  })

  it('persist is flush plus drain, and persistAll makes every store durable', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    const next = random(SEED)
    for (let i = 0; i < 20; i++) domain.write(below(next, SIZE - 64), randomBytes(next, 1 + below(next, 63)))
    domain.persist(0, 8)
    expect(domain.pendingUnits().length).toBeGreaterThan(0)
    domain.persistAll()
    expect(domain.durableImage().equals(domain.liveImage()), seedNote()).toBe(true)
    expect(domain.pendingUnits()).toEqual([])
  })

  it(`pending units are whole ${unit}-byte units at unit-aligned offsets holding the live bytes, and units equal to the durable bytes are left out`, () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    domain.write(PAGE + 3, Buffer.from([1, 2, 3]))
    domain.write(5 * PAGE - 1, Buffer.from([9, 9]))
    // Zeros over zeros change nothing, so they leave no pending unit.
    domain.write(10 * PAGE, Buffer.alloc(PAGE))
    domain.zero(12 * PAGE, 100)
    const pending = domain.pendingUnits()
    const live = domain.liveImage()
    const expectedOffsets =
      granularity === 'cache-line' ? [PAGE, 5 * PAGE - 8, 5 * PAGE] : [PAGE, 4 * PAGE, 5 * PAGE]
    expect(pending.map((p) => p.offset)).toEqual(expectedOffsets)
    for (const p of pending) expect(p.bytes.equals(bytesAt(live, p.offset, unit))).toBe(true)
  })

  it('crashImage keeps the durable bytes where no pending unit reached the media, and a unit either whole or not at all', () => {
    const next = random(SEED + 1)
    const domain = new SimulatedDomain(SIZE, granularity)
    domain.write(0, randomBytes(next, 3 * PAGE))
    domain.persistAll()
    const durable = domain.durableImage()
    for (let i = 0; i < 30; i++) domain.write(below(next, SIZE - 200), randomBytes(next, 1 + below(next, 200)))
    domain.flush(0, PAGE)
    const pending = domain.pendingUnits()
    expect(domain.crashImage(() => false).equals(durable)).toBe(true)
    expect(domain.crashImage(() => true).equals(domain.liveImage())).toBe(true)
    for (let round = 0; round < 20; round++) {
      const chosen = new Set<number>()
      const image = domain.crashImage((_unit, i) => {
        const reached = next() < 0.5
        if (reached) chosen.add(i)
        return reached
      })
      const context = seedNote(`round ${round}`)
      let covered = 0
      pending.forEach((p, i) => {
        const expected = chosen.has(i) ? p.bytes : bytesAt(durable, p.offset, unit)
        expect(bytesAt(image, p.offset, unit).equals(expected), `${context} unit at ${p.offset}`).toBe(true)
        covered += unit
      })
      // Outside the pending units, the image is the durable image.
      const mask = Buffer.from(image)
      for (const p of pending) {
        mask.fill(0, p.offset, p.offset + unit)
        durable.copy(mask, p.offset, p.offset, p.offset + unit)
      }
      expect(mask.equals(durable), context).toBe(true)
      expect(covered).toBe(pending.length * unit)
    }
  })

  it('writeMarker is a single aligned 8-byte store of an IEEE-754 double', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    domain.writeMarker(2 * PAGE + 16, 12345)
    const pending = domain.pendingUnits()
    expect(pending).toHaveLength(1)
    expect(pending[0]!.offset).toBe(granularity === 'cache-line' ? 2 * PAGE + 16 : 2 * PAGE)
    expect(domain.view(2 * PAGE + 16, 8).readDoubleLE(0)).toBe(12345)
    expect(domain.liveImage().readDoubleLE(2 * PAGE + 16)).toBe(12345)
    expect(domain.crashImage(() => true).readDoubleLE(2 * PAGE + 16)).toBe(12345)
    expect(() => domain.writeMarker(2 * PAGE + 4, 1)).toThrow(RangeError)
    expect(() => domain.writeMarker(SIZE - 4, 1)).toThrow(RangeError)
  })

  it('rejects ranges outside the domain', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    expect(() => domain.write(SIZE - 2, Buffer.alloc(4))).toThrow(RangeError)
    expect(() => domain.view(-1, 4)).toThrow(RangeError)
    expect(() => domain.zero(SIZE, 1)).toThrow(RangeError)
    expect(() => domain.flush(0, SIZE + 1)).toThrow(RangeError)
  })

  it('fromImage starts with live and durable images equal to the image and nothing pending', () => {
    const image = randomBytes(random(SEED + 2), SIZE)
    const domain = SimulatedDomain.fromImage(image, granularity)
    expect(domain.granularity).toBe(granularity)
    expect(domain.liveImage().equals(image)).toBe(true)
    expect(domain.durableImage().equals(image)).toBe(true)
    expect(domain.pendingUnits()).toEqual([])
    // The domain copied the image: changing the source changes nothing.
    image.fill(0)
    expect(domain.durableImage().every((b) => b === 0)).toBe(false)
  })

  it('counts stores, flushes and drains and reports each as an event', () => {
    const domain = new SimulatedDomain(SIZE, granularity)
    const events: string[] = []
    domain.onEvent = (kind) => events.push(kind)
    domain.write(0, Buffer.from([1]))
    domain.writeMarker(8, 1)
    domain.zero(16, 8)
    domain.flush(0, 24)
    domain.drain()
    expect(events).toEqual(['store', 'store', 'store', 'flush', 'drain'])
    expect([domain.stores, domain.flushes, domain.drains]).toEqual([3, 1, 1])
  })

  it('rejects a size that is not whole pages and an image of the wrong size', () => {
    expect(() => new SimulatedDomain(PAGE + 8, granularity)).toThrow(RangeError)
    expect(() => new SimulatedDomain(SIZE, granularity, Buffer.alloc(SIZE / 2))).toThrow(RangeError)
  })
})

describe('SimulatedDomain granularity', () => {
  it('cache-line: a flush covers whole 64-byte lines, so a store elsewhere in the line becomes durable and one in the next line does not', () => {
    const domain = new SimulatedDomain(SIZE, 'cache-line')
    domain.write(LINE * 10 + 1, Buffer.from([1]))
    domain.write(LINE * 10 + 60, Buffer.from([2]))
    domain.write(LINE * 11, Buffer.from([3]))
    domain.persist(LINE * 10, 1)
    const durable = domain.durableImage()
    expect(durable[LINE * 10 + 1]).toBe(1)
    expect(durable[LINE * 10 + 60]).toBe(2)
    expect(durable[LINE * 11]).toBe(0)
    expect(domain.pendingUnits().map((p) => p.offset)).toEqual([LINE * 11])
  })

  it('cache-line: a drain makes durable the bytes a unit had when flushed, not a later store to it', () => {
    const domain = new SimulatedDomain(SIZE, 'cache-line')
    domain.write(0, Buffer.from([1]))
    domain.flush(0, 1)
    domain.write(0, Buffer.from([2]))
    domain.drain()
    expect(domain.durableImage()[0]).toBe(1)
    expect(domain.liveImage()[0]).toBe(2)
    const pending = domain.pendingUnits()
    expect(pending).toHaveLength(1)
    expect(pending[0]!.bytes[0]).toBe(2)
  })

  it('page: a flush of one byte makes its whole 4 KiB page durable at the drain, and no other page', () => {
    const domain = new SimulatedDomain(SIZE, 'page')
    domain.write(PAGE * 3 + 5, Buffer.from([7]))
    domain.write(PAGE * 4 - 1, Buffer.from([8]))
    domain.write(PAGE * 4, Buffer.from([9]))
    domain.persist(PAGE * 3 + 5, 1)
    const durable = domain.durableImage()
    expect(durable[PAGE * 3 + 5]).toBe(7)
    expect(durable[PAGE * 4 - 1]).toBe(8)
    expect(durable[PAGE * 4]).toBe(0)
    expect(domain.pendingUnits().map((p) => [p.offset, p.bytes.length])).toEqual([[PAGE * 4, PAGE]])
  })

  it('page: a drain writes back the page as it is at the drain (msync copies the page when it runs)', () => {
    const domain = new SimulatedDomain(SIZE, 'page')
    domain.write(0, Buffer.from([1]))
    domain.flush(0, 1)
    domain.write(1, Buffer.from([2]))
    domain.drain()
    expect([...domain.durableImage().subarray(0, 2)]).toEqual([1, 2])
  })

  it('orders the commit marker only at cache-line granularity', () => {
    expect(new SimulatedDomain(SIZE, 'cache-line').orderedMarker).toBe(true)
    expect(new SimulatedDomain(SIZE, 'page').orderedMarker).toBe(false)
    expect(new SimulatedDomain(SIZE, 'cache-line').unitBytes).toBe(8)
    expect(new SimulatedDomain(SIZE, 'page').unitBytes).toBe(PAGE)
    expect(new SimulatedDomain(SIZE).granularity).toBe('cache-line')
  })
})
