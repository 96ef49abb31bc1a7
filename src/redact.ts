// Keeps enc-tokens, access keys and proxy credentials out of anything logged or quoted, in every spelling they travel in.

import { decodeEncToken } from './tenants/enc-token.js'

const REDACTED = '[redacted]'

// ---------------------------------------------------------------------------------------------
// URLs for log lines
// ---------------------------------------------------------------------------------------------

/**
 * A request URL fit for a log line: the token position of every key URL family is replaced, whatever the
 * spelling of the path (percent-escapes, letter case), and so is any path segment or query value that is
 * itself a PallyCon enc-token, and any `enc-token` parameter (after `?`, `&`, `;` or a stray `#`).
 */
export function redactUrl (url: string): string {
  const cut = url.search(/[?#]/)
  const path = cut === -1 ? url : url.slice(0, cut)
  const tail = cut === -1 ? '' : url.slice(cut)
  return redactPath(path) + redactTail(tail)
}

function redactPath (path: string): string {
  const segments = path.split('/')
  const decoded = segments.map(lenientDecode)
  const names = decoded.map(s => s.toLowerCase())
  const hidden = new Set<number>()
  for (let i = 0; i < names.length; i++) {
    // /…/cpix/pallycon/getKey/{token}: everything after getKey is the token (a '/' in it may be literal).
    if (names[i] === 'cpix' && names[i + 1] === 'pallycon' && names[i + 2] === 'getkey') {
      for (let j = i + 3; j < segments.length; j++) hidden.add(j)
    }
    // /cpix/anevia/{format}/{token}/{cid}: all but the last segment after the format (all of it when no cid).
    if (names[i] === 'cpix' && names[i + 1] === 'anevia') {
      const last = segments.length - 1
      for (let j = i + 3; j < segments.length; j++) if (j < last || j === i + 3) hidden.add(j)
    }
  }
  decoded.forEach((value, i) => { if (looksLikeEncToken(value, segments[i])) hidden.add(i) })
  return segments.map((s, i) => hidden.has(i) && s !== '' ? REDACTED : s).join('/')
}

function redactTail (tail: string): string {
  return tail.split(/([?&#;])/).map(part => {
    if (part.length <= 1 && /^[?&#;]?$/.test(part)) return part
    const eq = part.indexOf('=')
    const name = lenientDecode((eq === -1 ? part : part.slice(0, eq)).replace(/\+/g, ' ')).trim().toLowerCase()
    const value = eq === -1 ? '' : part.slice(eq + 1)
    if (name === 'enc-token') return `${part.slice(0, eq === -1 ? part.length : eq)}=${REDACTED}`
    // A bare token (its '=' padding is no separator), or a token as the value of any parameter.
    if (looksLikeEncToken(lenientDecode(part), part)) return REDACTED
    if (looksLikeEncToken(lenientDecode(value), value)) return `${part.slice(0, eq)}=${REDACTED}`
    return part
  }).join('')
}

function looksLikeEncToken (decoded: string, raw: string): boolean {
  return decoded.length >= 16 && (decodeEncToken(decoded) !== undefined || decodeEncToken(raw) !== undefined)
}

/** Percent-decoding that never throws: escapes that do not form UTF-8 are decoded byte by byte. */
function lenientDecode (text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  }
}

// ---------------------------------------------------------------------------------------------
// Secrets in text written by someone else (a KMS, a WAF in front of it)
// ---------------------------------------------------------------------------------------------

/** Secrets shorter than this are not searched for (they would match ordinary words). */
const MIN_SECRET = 8
/** A run of this many characters shared with a secret spelling counts as a (partial) copy of it. */
const GRAM = 16

export interface Scrubber {
  /** The text with every spelling of every secret, and every run of GRAM characters copied from one, replaced (short texts: messages). */
  scrub: (text: string) => string
  /** Whether the text carries a whole secret in any spelling (linear, for large bodies). */
  contains: (text: string) => boolean
}

/**
 * A scrubber for the given secrets (enc-tokens, proxy credentials, access keys). Each enc-token also brings its
 * access key, so the site-scoped credential (the token's JSON) is covered whatever JSON spelling carries it.
 *
 * Matching is done on a canonical form of the text, so no list of spellings can be incomplete: escapes are
 * decoded (percent-escapes in either hex case, partial or double encoding; JSON `\/`, `\"`, `\uXXXX`; `\xHH`;
 * XML/HTML character references), a space stands for '+', and letter case is ignored. The needles are each
 * secret, its url-safe/standard base64 alphabet twin, and its base64 (both alphabets) at each of the three
 * byte alignments it can have inside a larger base64 blob, padded or not.
 */
export function secretScrubber (secrets: Array<string | undefined>): Scrubber {
  const key = JSON.stringify(secrets)
  const known = scrubbers.get(key)
  if (known !== undefined) return known
  if (scrubbers.size >= MAX_CACHED_SCRUBBERS) scrubbers.clear()
  const made = makeScrubber(secrets)
  scrubbers.set(key, made)
  return made
}

/**
 * Scrubbers by their secrets: a key request asks for the one of its caller's tokens, and the needles (every spelling of
 * every secret) cost more to build than one search. At most this many sets are kept (the cache is emptied when full), in
 * this process's memory only, where the tenant registry and each request's URL hold the same secrets anyway.
 */
const scrubbers = new Map<string, Scrubber>()
const MAX_CACHED_SCRUBBERS = 256

function makeScrubber (secrets: Array<string | undefined>): Scrubber {
  const needles = secretNeedles(secrets)
  let grams: Set<string> | undefined
  const gramsOf = (): Set<string> => {
    grams ??= new Set(needles.flatMap(n => Array.from({ length: Math.max(0, n.length - GRAM + 1) }, (_v, i) => n.slice(i, i + GRAM))))
    return grams
  }
  // A text holds one of the needles exactly when it holds one of those no other needle is part of: fewer searches.
  const searched = [...new Set(needles)].filter((n, _i, all) => !all.some(m => m !== n && n.includes(m)))
  // The longest stretch of each without '+': where a needle matches, that stretch is in the lowered text as it is.
  // (A piece holding another piece is implied by it: only the inner one is searched.)
  const pieces = [...new Set(searched.map(n => n.split('+').reduce((a, b) => b.length > a.length ? b : a, '')))]
    .filter((p, _i, all) => !all.some(q => q !== p && p.includes(q)))
  const plus = searched.some(n => n.includes('+'))
  return {
    contains (text) {
      if (searched.length === 0) return false
      if (!hasEscape(text)) {
        // The usual CPIX reply: its canonical form is the lowered text with spaces as '+'. A few native searches of the
        // lowered text settle it, unless a needle with '+' might be there (then the canonical text decides).
        const lowered = text.toLowerCase()
        if (!pieces.some(p => lowered.includes(p))) return false
        if (!plus) return searched.some(n => lowered.includes(n))
      }
      const canonical = canonicalText(text)
      return searched.some(n => canonical.includes(n))
    },
    scrub (text) {
      if (needles.length === 0 || text === '') return text
      const found = (canonical: string): Array<[number, number]> => {
        const ranges: Array<[number, number]> = []
        for (const needle of needles) {
          for (let at = canonical.indexOf(needle); at !== -1; at = canonical.indexOf(needle, at + 1)) ranges.push([at, at + needle.length])
        }
        const set = gramsOf()
        for (let i = 0; i + GRAM <= canonical.length; i++) {
          if (set.has(canonical.slice(i, i + GRAM))) ranges.push([i, i + GRAM])
        }
        return ranges
      }
      // The position map costs more than the search: built only for text that holds something to cut.
      if (found(canonicalText(text)).length === 0) return text
      const { canonical, start, end } = canonicalWithMap(text)
      const ranges = found(canonical)
      if (ranges.length === 0) return text
      // Needles leave base64 padding out (so unpadded echoes match); the padding after a match goes with it.
      const padded = ranges.map(([a, b]): [number, number] => { while (canonical[b] === '=') b++; return [a, b] })
      return cutRanges(text, mergeRanges(padded.map(([a, b]) => [start[a], end[b - 1]])))
    }
  }
}

/** Every canonical needle for a list of secrets (exported for tests of the scrubber itself). */
function secretNeedles (secrets: Array<string | undefined>): string[] {
  const raw = new Set<string>()
  for (const secret of secrets) {
    if (secret === undefined) continue
    const trimmed = secret.trim()
    if (trimmed.length < MIN_SECRET) continue
    raw.add(trimmed)
    const accessKey = decodeEncToken(trimmed)?.accessKey
    if (accessKey !== undefined && accessKey.length >= MIN_SECRET) {
      raw.add(accessKey)
      raw.add(accessKey.replace(/\//g, '\\/')) // as PallyCon's own JSON spells it, for the base64 forms below
    }
  }
  const forms = new Set<string>()
  for (const secret of raw) {
    const core = secret.replace(/=+$/, '')
    forms.add(core)
    forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'))
    forms.add(core.replace(/-/g, '+').replace(/_/g, '/'))
    for (const b64 of base64Cores(Buffer.from(secret, 'utf8'))) {
      forms.add(b64)
      forms.add(b64.replace(/\+/g, '-').replace(/\//g, '_'))
    }
  }
  return [...forms].map(canonicalNeedle).filter(n => n.length >= MIN_SECRET)
}

/** The base64 characters that depend only on `bytes`, for each of the three offsets at which they can start. */
function base64Cores (bytes: Buffer): string[] {
  const out: string[] = []
  for (let k = 0; k < 3; k++) {
    const encoded = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64')
    out.push(encoded.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6)))
  }
  return out
}

/** One escape of any of the syntaxes a URL, JSON, JavaScript or XML/HTML text can hold a character in. */
const ESCAPE = /%([0-9a-f]{2})|\\u([0-9a-f]{4})|\\x([0-9a-f]{2})|\\([/"\\'])|&#(\d{1,7});|&#x([0-9a-f]{1,6});|&(amp|quot|apos|lt|gt|sol|plus|equals);/gi
const ENTITIES: Record<string, string> = { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', sol: '/', plus: '+', equals: '=' }
/** Decoding rounds: enough for double and triple encoding (%25252B). */
const ROUNDS = 3

function unescapeOne (
  match: string, pct?: string, u?: string, x?: string, lit?: string, dec?: string, hex?: string, entity?: string
): string {
  const code = pct ?? u ?? x ?? hex
  if (code !== undefined) return safeChar(parseInt(code, 16))
  if (lit !== undefined) return lit
  if (dec !== undefined) return safeChar(parseInt(dec, 10))
  if (entity !== undefined) return ENTITIES[entity.toLowerCase()] ?? match
  return match
}

function safeChar (code: number): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : '\ufffd'
}

function finish (text: string): string {
  return text.toLowerCase().replace(/ /g, '+')
}

function canonicalNeedle (needle: string): string {
  return finish(needle)
}

/** Whether the text may hold an escape: every ESCAPE alternative starts with '%', '\\' or '&' (three native scans, no regexp pass). */
function hasEscape (text: string): boolean {
  return text.includes('%') || text.includes('\\') || text.includes('&')
}

function canonicalText (text: string): string {
  // A text without any escape is its own unescaped form.
  if (!hasEscape(text)) return finish(text)
  let out = text
  for (let round = 0; round < ROUNDS; round++) {
    const next = out.replace(ESCAPE, unescapeOne)
    if (next === out) break
    out = next
  }
  return finish(out)
}

/**
 * The canonical text with, for each of its UTF-16 units, the range [start, end) of the original text it
 * came from. Uses the same ESCAPE grammar and rounds as canonicalText, so both always agree.
 * toLowerCase and the space mapping keep the length for the ASCII text secrets are made of; where lowering
 * changes the length (rare non-ASCII), the map falls back to the whole text, which over-redacts, never under.
 */
function canonicalWithMap (text: string): { canonical: string, start: number[], end: number[] } {
  let current = text
  let start = Array.from({ length: text.length }, (_v, i) => i)
  let end = Array.from({ length: text.length }, (_v, i) => i + 1)
  for (let round = 0; round < ROUNDS; round++) {
    let next = ''
    const nextStart: number[] = []
    const nextEnd: number[] = []
    let last = 0
    let changed = false
    const push = (piece: string, from: number, to: number): void => {
      for (let i = 0; i < piece.length; i++) {
        nextStart.push(start[from])
        nextEnd.push(end[to - 1])
      }
      next += piece
    }
    for (const m of current.matchAll(ESCAPE)) {
      const at = m.index
      for (let i = last; i < at; i++) push(current[i], i, i + 1)
      const replaced = unescapeOne(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7])
      if (replaced !== m[0]) changed = true
      push(replaced, at, at + m[0].length)
      last = at + m[0].length
    }
    if (!changed) break
    for (let i = last; i < current.length; i++) push(current[i], i, i + 1)
    current = next
    start = nextStart
    end = nextEnd
  }
  const canonical = finish(current)
  if (canonical.length !== current.length) {
    const length = canonical.length
    return { canonical, start: Array.from({ length }, () => 0), end: Array.from({ length }, () => text.length) }
  }
  return { canonical, start, end }
}

function mergeRanges (ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0])
  const out: Array<[number, number]> = []
  for (const [a, b] of sorted) {
    const prev = out[out.length - 1]
    if (prev !== undefined && a <= prev[1]) prev[1] = Math.max(prev[1], b)
    else out.push([a, b])
  }
  return out
}

function cutRanges (text: string, ranges: Array<[number, number]>): string {
  let out = ''
  let last = 0
  for (const [a, b] of ranges) {
    out += text.slice(last, a) + REDACTED
    last = b
  }
  return out + text.slice(last)
}
