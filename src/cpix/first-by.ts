// Index a list by a key, keeping the first item of each key: what a find in document order would return, in one pass.

export function firstBy<T> (items: readonly T[], keyOf: (item: T) => string): Map<string, T> {
  const byKey = new Map<string, T>()
  for (const item of items) {
    const key = keyOf(item)
    if (!byKey.has(key)) byKey.set(key, item)
  }
  return byKey
}
