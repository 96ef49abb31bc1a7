// A second opinion from libxml2 (xmllint-wasm): validate a CPIX document against the XSD of its version.

import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { validateXML } from 'xmllint-wasm'
import { PROJECT_ROOT } from './fixtures.js'

const XSD_ROOT = resolve(PROJECT_ROOT, 'test', 'fixtures', 'xsd')
const FILES = ['cpix.xsd', 'pskc.xsd', 'xenc-schema.xsd', 'xmldsig-core-schema.xsd']

export function xsdVersionFor (cpixVersion: string | undefined): '2.0' | '2.3' | '2.4' {
  if (cpixVersion === '2.4') return '2.4'
  if (cpixVersion === '2.3' || cpixVersion === '2.3.1') return '2.3'
  return '2.0'
}

export async function xsdErrors (xml: string, cpixVersion: string | undefined): Promise<string[]> {
  const dir = join(XSD_ROOT, xsdVersionFor(cpixVersion))
  const [schema, ...imports] = FILES.map(f => ({ fileName: f, contents: readFileSync(join(dir, f), 'utf8') }))
  const result = await validateXML({ xml: [{ fileName: 'doc.xml', contents: xml }], schema: [schema], preload: imports })
  return result.errors.map(e => e.message)
}
