// CPU time of each step of one key request, in process (no HTTP): the bench request and its PallyCon-shaped reply through the
// dist/ of --root (this checkout by default). CPU time, best of three rounds, so that a busy machine shifts the figures less
// than wall-clock throughput. Not part of npm test.

import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { SPEKE_VERSION, TOKEN, pallyconReply, spekeV2Request } from './request.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const OWN_ROOT = resolve(HERE, '..')
const { values } = parseArgs({ options: { root: { type: 'string', default: OWN_ROOT }, rounds: { type: 'string', default: '300' } } })
const ROOT = resolve(values.root)
execFileSync(process.execPath, [join(OWN_ROOT, 'scripts', 'build-if-needed.mjs')], { cwd: OWN_ROOT, stdio: 'inherit' })
const dist = (path) => import(join(ROOT, 'dist', path))
const { decodeXmlBytes } = await dist('cpix/decode.js')
const { parseCpix } = await dist('cpix/parse.js')
const { validateRequest } = await dist('cpix/validate.js')
const { verifyAndRepair } = await dist('pipeline/check-reply.js')
const { rejectNonCpix } = await dist('pipeline/kms-reply.js')
const { localProvider } = await dist('kms/local/provider.js')

const body = spekeV2Request()
const replyBytes = await pallyconReply(OWN_ROOT, body)
const reply = () => ({ status: 200, contentType: 'application/xml', body: replyBytes, latencyMs: 1 })
const check = verifyAndRepair()
const provider = localProvider({ secret: Buffer.alloc(32, 3), playReadyLaUrl: 'https://license.pallycon.com/ri/licenseManager.do', hlsKeyUrlBase: 'https://keys.example.com', widevineProvider: 'inkaentworks' })
const n = Number(values.rounds)

async function time (name, step) {
  for (let i = 0; i < 100; i++) await step()
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const start = process.cpuUsage()
    for (let i = 0; i < n; i++) await step()
    const used = process.cpuUsage(start)
    best = Math.min(best, (used.user + used.system) / n)
  }
  console.log(`| ${name} | ${best.toFixed(0)} |`)
}

const secrets = [TOKEN, TOKEN, 'bench-access-key', 'bench-access-key']
let doc
console.log(`request ${body.length} bytes, reply ${replyBytes.length} bytes, ${ROOT}`)
console.log('| step | µs CPU |')
console.log('|---|---:|')
await time('decode, parse and validate the request', () => { doc = parseCpix(decodeXmlBytes(body)); validateRequest(doc, 'speke-v2.0') })
await time('secret scan of the reply (rejectNonCpix)', () => rejectNonCpix(reply(), secrets))
await time('decode and parse the reply', () => parseCpix(decodeXmlBytes(replyBytes)))
await time('verify + repair + SPEKE v2 checks (incl. parse)', () => check({ request: doc, reply: reply(), dialect: 'speke-v2.0' }))
await time('embedded provider, from the bytes', () => provider.getKeys({ route: 'speke', dialect: 'speke-v2.0', token: TOKEN, spekeVersion: SPEKE_VERSION, body }, AbortSignal.timeout(5000)))
// The pipeline hands the embedded provider the document it parsed (older checkouts ignore it and parse the bytes).
await time('embedded provider, given the parsed request', () => provider.getKeys({ route: 'speke', dialect: 'speke-v2.0', token: TOKEN, spekeVersion: SPEKE_VERSION, body, document: doc }, AbortSignal.timeout(5000)))

// The floor the project card sets: fast-xml-parser 5 alone, validating and parsing what src/cpix/xml.ts hands it (the text with
// every run of 32 or more characters without '<' or '&' between two tags replaced by one character, as xml.ts lifts them), with
// xml.ts's options. No step above can cost less than its document's row here.
const fxp = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false, parseAttributeValue: false, trimValues: false, processEntities: false, htmlEntities: false, commentPropName: '#comment', cdataPropName: '#cdata', ignoreDeclaration: true, ignorePiTags: true, jPath: false })
const skeleton = (bytes) => bytes.toString('utf8').replace(/>[^<&]{32,}</g, '>\u0001<')
const requestSkeleton = skeleton(body)
const replySkeleton = skeleton(replyBytes)
await time('floor: fast-xml-parser validate + parse, request', () => { XMLValidator.validate(requestSkeleton); fxp.parse(requestSkeleton) })
await time('floor: fast-xml-parser validate + parse, reply', () => { XMLValidator.validate(replySkeleton); fxp.parse(replySkeleton) })
