// Reads a reply's DRM signalling once per request (PSSH, ContentProtectionData, HLS tags…): verify, repair and SPEKE v2 checks share it.

import { decodeBase64 } from './base64.js'
import { extractCencPssh, parseHlsTag } from './hls.js'
import type { HlsTag } from './hls.js'
import { parseWrmHeader } from './playready.js'
import type { ParsedWrmHeader } from './playready.js'
import { parsePsshBoxes } from './pssh.js'
import type { PsshBox } from './pssh.js'
import type { XmlElement } from './xml.js'

/** A base64 value of a DRMSystem: its PSSH, ContentProtectionData or URIExtXKey, or one of its HLSSignalingData elements. */
type SignalSlot = 'PSSH' | 'ContentProtectionData' | 'URIExtXKey' | 'HLSSignalingData'

/**
 * Every answer is the function named for the value given, read once per element, slot and value, and remembered for the
 * life of the reader, which is one request: make a new reader per request, never keep one. `element` is the DRMSystem
 * element, or for HLSSignalingData the HLSSignalingData element itself. What is remembered is found by element (no
 * hashing of long texts) and used only for the same value; what it returns is shared: read it, never change it. A read
 * that throws throws the same error again at every ask.
 */
export interface SignallingReader {
  /** decodeBase64(base64). */
  bytes: (element: XmlElement, slot: SignalSlot, base64: string) => Buffer | undefined
  /** decodeBase64(base64) as UTF-8 text. */
  text: (element: XmlElement, slot: SignalSlot, base64: string) => string | undefined
  /** parsePsshBoxes of a PSSH value that decodes (ask `bytes` first). */
  psshBoxes: (element: XmlElement, base64: string) => PsshBox[]
  /** parseHlsTag of an HLSSignalingData value's text ('' when it is not base64). */
  hlsTag: (element: XmlElement, base64: string) => HlsTag
  /** extractCencPssh of a ContentProtectionData value's text (ask `text` first). */
  cencPssh: (element: XmlElement, base64: string) => string | undefined
  /**
   * The slot now holds what the caller wrote: `base64` = encodeBase64(text), and where it built the text from parts, what
   * reading them back gives (its HLS tag, or the base64 of its pssh element): later reads take these without decoding.
   */
  wrote: (element: XmlElement, slot: SignalSlot, written: Written) => void
  /** parseWrmHeader, once per distinct header. */
  wrmHeader: (xml: string) => ParsedWrmHeader
}

interface Written { base64: string, text: string, tag?: HlsTag, cencPssh?: string }

type Outcome<T> = { value: T } | { error: unknown }

/** What one value was read as so far. */
interface Reading {
  base64: string
  bytes?: { value: Buffer | undefined }
  text?: { value: string | undefined }
  boxes?: Outcome<PsshBox[]>
  tag?: Outcome<HlsTag>
  pssh?: Outcome<string | undefined>
}

export function signallingReader (): SignallingReader {
  const readings: Record<SignalSlot, Map<XmlElement, Reading>> = {
    PSSH: new Map(),
    ContentProtectionData: new Map(),
    URIExtXKey: new Map(),
    HLSSignalingData: new Map()
  }
  const headers = new Map<string, Outcome<ParsedWrmHeader>>()

  const readingOf = (element: XmlElement, slot: SignalSlot, base64: string): Reading => {
    const known = readings[slot].get(element)
    if (known !== undefined && known.base64 === base64) return known
    const reading: Reading = { base64 }
    readings[slot].set(element, reading)
    return reading
  }
  const bytesOf = (reading: Reading): Buffer | undefined => (reading.bytes ??= { value: decodeBase64(reading.base64) }).value
  const textOf = (reading: Reading): string | undefined => (reading.text ??= { value: bytesOf(reading)?.toString('utf8') }).value

  return {
    bytes: (element, slot, base64) => bytesOf(readingOf(element, slot, base64)),
    text: (element, slot, base64) => textOf(readingOf(element, slot, base64)),
    psshBoxes: (element, base64) => {
      const reading = readingOf(element, 'PSSH', base64)
      return settled(reading.boxes ??= attempt(() => parsePsshBoxes(bytesOf(reading) ?? Buffer.alloc(0))))
    },
    hlsTag: (element, base64) => {
      const reading = readingOf(element, 'HLSSignalingData', base64)
      return settled(reading.tag ??= attempt(() => parseHlsTag(textOf(reading) ?? '')))
    },
    cencPssh: (element, base64) => {
      const reading = readingOf(element, 'ContentProtectionData', base64)
      return settled(reading.pssh ??= attempt(() => extractCencPssh(textOf(reading) ?? '')))
    },
    wrote: (element, slot, written) => {
      const reading = readingOf(element, slot, written.base64)
      // ASCII (one byte a character) comes back from UTF-8 as it went in; other text (rare here) is left to decoding.
      if (Buffer.byteLength(written.text, 'utf8') !== written.text.length) return
      reading.text ??= { value: written.text }
      if (written.tag !== undefined) reading.tag ??= { value: written.tag }
      if (written.cencPssh !== undefined) reading.pssh ??= { value: written.cencPssh }
    },
    wrmHeader: (xml) => {
      let outcome = headers.get(xml)
      if (outcome === undefined) headers.set(xml, outcome = attempt(() => parseWrmHeader(xml)))
      return settled(outcome)
    }
  }
}

function attempt<T> (read: () => T): Outcome<T> {
  try {
    return { value: read() }
  } catch (error) {
    return { error }
  }
}

function settled<T> (outcome: Outcome<T>): T {
  if ('error' in outcome) throw outcome.error
  return outcome.value
}
