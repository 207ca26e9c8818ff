/** "1 batch", "2 batches": counts in messages read as sentences. */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}
