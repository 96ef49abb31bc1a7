// Extra proof the keys are usable: ffmpeg packages a test stream in CENC with the kid and key the proxy returned, and decrypts it back.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { request } from 'undici'
import { DEMO_TOKEN } from '../helpers/fixtures.js'
import { startProxy } from '../helpers/proxy.js'

/** ffmpeg from PATH, else the static build shipped by the @ffmpeg-installer devDependency; undefined when neither runs. */
function findFfmpeg (): string | undefined {
  const candidates = ['ffmpeg']
  try {
    candidates.push((createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path)
  } catch {}
  return candidates.find(bin => {
    try {
      execFileSync(bin, ['-hide_banner', '-version'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })
}

const FFMPEG = findFfmpeg()

function ffmpeg (args: string[]): string {
  if (FFMPEG === undefined) throw new Error('no ffmpeg')
  return execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Decoded-frame hashes of a file (framemd5), decrypting with `key` when given. */
function frameHashes (file: string, key?: string): string[] {
  const out = ffmpeg([...(key === undefined ? [] : ['-decryption_key', key]), '-i', file, '-map', '0:v', '-f', 'framemd5', '-'])
  return out.split('\n').filter(l => /^\d/.test(l)).map(l => l.split(',').pop()?.trim() ?? '')
}

t.test('a CENC stream packaged with the returned kid and key decrypts back to the original frames', async t => {
  if (FFMPEG === undefined) {
    // npm ci installs @ffmpeg-installer/ffmpeg; without it (or an ffmpeg on PATH) this proof cannot run, and it must not pass silently.
    t.fail('no ffmpeg on PATH and @ffmpeg-installer/ffmpeg is not installed (npm ci): the packaging proof cannot run')
    return
  }
  t.comment(`ffmpeg: ${FFMPEG}`)
  const proxy = await startProxy({ AUDIT: 'off' })
  t.teardown(() => proxy.close())
  const res = await request(`${proxy.url}/v2/keys?enc-token=${encodeURIComponent(DEMO_TOKEN)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content_id: 'ffmpeg-proof', drm_types: ['widevine', 'playready'], encryption_scheme: 'cenc', track_types: ['HD'] })
  })
  t.equal(res.statusCode, 200)
  const { content_key_list: [key] } = await res.body.json() as { content_key_list: Array<{ key_id_hex: string, key_hex: string }> }
  t.match(key.key_id_hex, /^[0-9a-f]{32}$/)
  t.match(key.key_hex, /^[0-9a-f]{32}$/)

  const dir = t.testdir()
  const clear = join(dir, 'clear.mp4')
  const encrypted = join(dir, 'cenc.mp4')
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=1:size=160x120:rate=10', '-c:v', 'mpeg4', '-q:v', '5', clear])
  ffmpeg(['-i', clear, '-c', 'copy', '-encryption_scheme', 'cenc-aes-ctr', '-encryption_key', key.key_hex, '-encryption_kid', key.key_id_hex, encrypted])

  const bytes = readFileSync(encrypted)
  const tenc = bytes.indexOf('tenc')
  t.ok(tenc > 0, 'the encrypted file has a tenc box')
  t.equal(bytes.subarray(tenc + 12, tenc + 28).toString('hex'), key.key_id_hex, 'its default_KID is the returned kid')

  const original = frameHashes(clear)
  t.equal(original.length, 10, 'ten frames')
  t.same(frameHashes(encrypted, key.key_hex), original, 'decrypted with the returned key: the same frames')
  const wrongKey = key.key_hex.replace(/^./, c => (c === '0' ? '1' : '0'))
  let wrong: string[] = []
  try {
    wrong = frameHashes(encrypted, wrongKey)
  } catch {
    wrong = []
  }
  t.notSame(wrong, original, 'a wrong key does not give the frames back')
})
