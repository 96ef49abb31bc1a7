// A second opinion from libxml2 (xmllint-wasm): validate CPIX documents against the XSD of their version, many per schema compile.

import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { memoryPages, validateXML } from 'xmllint-wasm'
import { PROJECT_ROOT } from './fixtures.js'

const XSD_ROOT = resolve(PROJECT_ROOT, 'test', 'fixtures', 'xsd')
const FILES = ['cpix.xsd', 'pskc.xsd', 'xenc-schema.xsd', 'xmldsig-core-schema.xsd']
/** Each xmllint run copies its documents into a wasm file system: batches are cut at this many bytes. */
const BATCH_BYTES = 8 * 1024 * 1024

type XsdVersion = '2.0' | '2.3' | '2.4'

function xsdVersionFor (cpixVersion: string | undefined): XsdVersion {
  if (cpixVersion === '2.4') return '2.4'
  if (cpixVersion === '2.3' || cpixVersion === '2.3.1') return '2.3'
  return '2.0'
}

/**
 * The XSD errors of many documents, in order: one xmllint run (one worker, one wasm instance, one schema
 * compile) per schema version and batch, instead of one per document.
 */
export async function xsdErrorsMany (docs: ReadonlyArray<{ xml: string, cpixVersion: string | undefined }>): Promise<string[][]> {
  const out: string[][] = docs.map(() => [])
  const byVersion = new Map<XsdVersion, number[]>()
  docs.forEach((d, i) => {
    const v = xsdVersionFor(d.cpixVersion)
    byVersion.set(v, [...(byVersion.get(v) ?? []), i])
  })
  for (const [version, indexes] of byVersion) {
    for (const batch of batches(indexes, i => Buffer.byteLength(docs[i].xml))) {
      const errors = await runXmllint(version, batch.map(i => docs[i].xml))
      batch.forEach((docIndex, j) => { out[docIndex] = errors[j] })
    }
  }
  return out
}

function batches (indexes: number[], size: (i: number) => number): number[][] {
  const out: number[][] = []
  let current: number[] = []
  let bytes = 0
  for (const i of indexes) {
    if (current.length > 0 && bytes + size(i) > BATCH_BYTES) { out.push(current); current = []; bytes = 0 }
    current.push(i)
    bytes += size(i)
  }
  if (current.length > 0) out.push(current)
  return out
}

const schemas = new Map<XsdVersion, Array<{ fileName: string, contents: string }>>()

function schemaFiles (version: XsdVersion): Array<{ fileName: string, contents: string }> {
  let files = schemas.get(version)
  if (files === undefined) {
    files = FILES.map(f => ({ fileName: f, contents: readFileSync(join(XSD_ROOT, version, f), 'utf8') }))
    schemas.set(version, files)
  }
  return files
}

async function runXmllint (version: XsdVersion, xmls: string[]): Promise<string[][]> {
  const [schema, ...imports] = schemaFiles(version)
  const names = xmls.map((_, i) => `doc${i}.xml`)
  const bytes = xmls.reduce((n, x) => n + Buffer.byteLength(x), 0)
  let output: string
  try {
    const result = await validateXML({
      xml: xmls.map((contents, i) => ({ fileName: names[i], contents })),
      schema: [schema],
      preload: imports,
      // Room for the documents themselves on top of libxml2's own working memory.
      maxMemoryPages: Math.min(memoryPages.max, memoryPages.defaultMaxMemoryPages + Math.ceil((bytes * 4) / (64 * 1024)))
    })
    output = result.rawOutput
  } catch (err) {
    // A document that is not even well-formed ends xmllint with another exit code: its messages are still the errors.
    const code = (err as { code?: unknown }).code
    if (typeof code !== 'number' || !(err instanceof Error)) throw err
    output = err.message
  }
  return splitOutput(output, names)
}

/** xmllint prints `docN.xml:LINE: message` lines (continuation lines follow without a prefix) and a verdict per file. */
function splitOutput (output: string, names: string[]): string[][] {
  const index = new Map(names.map((n, i) => [n, i]))
  const errors: string[][] = names.map(() => [])
  let current: number | undefined
  for (const line of output.split('\n')) {
    if (line === '') continue
    const verdict = /^(doc\d+\.xml) (validates|fails to validate)$/.exec(line)
    if (verdict !== null) { current = undefined; continue }
    const located = /^(doc\d+\.xml):(\d+): (.*)$/.exec(line)
    if (located !== null && index.has(located[1])) {
      current = index.get(located[1])
      errors[current ?? 0].push(located[3].trim())
    } else if (current !== undefined) {
      errors[current].push(line)
    } else {
      throw new Error(`xmllint said something about no document in particular: ${line}`)
    }
  }
  return errors
}
