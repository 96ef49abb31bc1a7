// Creates a small file once, durably and atomically: a temporary file, fsynced, linked into place; a file already there wins.

import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'

/**
 * Writes `content` to `path` unless a file is already there. A concurrent starter sees no file or a whole one.
 * Returns true when this call created it (the directory entry is fsynced too), false when another file was there first.
 */
export function createFileOnce (path: string, content: string, mode: number): boolean {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(temp, 'wx', mode)
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return false
  } finally {
    unlinkSync(temp)
  }
  const dirFd = openSync(dir, 'r')
  try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
  return true
}
