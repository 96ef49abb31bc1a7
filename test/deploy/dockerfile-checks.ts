// A small Dockerfile reader for static checks: instructions with line continuations, stages, ARG defaults in FROM,
// exec-form detection and HEALTHCHECK options. Enough for this repository's Dockerfile, not a full BuildKit parser.

export interface Instruction {
  keyword: string
  args: string
  /** 1-based line where the instruction starts. */
  line: number
}

export interface Stage {
  /** The FROM image as written. */
  from: string
  /** The FROM image with global ARG defaults substituted. */
  image: string
  name?: string
  platform?: string
  instructions: Instruction[]
}

export interface Dockerfile {
  /** ARG defaults declared before the first FROM. */
  globalArgs: Map<string, string | undefined>
  stages: Stage[]
}

/** Split into instructions: comment and blank lines are dropped (also inside continuations), `\` joins lines. */
export function parseInstructions (text: string): Instruction[] {
  const lines = text.split(/\r?\n/)
  let escape = '\\'
  // Parser directives come first, as "# directive=value" lines.
  for (const line of lines) {
    const directive = /^#\s*([a-z]+)\s*=\s*(\S+)\s*$/i.exec(line)
    if (directive === null) break
    if (directive[1]?.toLowerCase() === 'escape') escape = directive[2] as string
  }
  const instructions: Instruction[] = []
  let buffer: string | undefined
  let start = 0
  const finish = (): void => {
    const joined = (buffer ?? '').trim()
    const space = joined.search(/\s/)
    const keyword = (space < 0 ? joined : joined.slice(0, space)).toUpperCase()
    instructions.push({ keyword, args: space < 0 ? '' : joined.slice(space).trim(), line: start })
    buffer = undefined
  }
  lines.forEach((raw, index) => {
    const trimmed = raw.trim()
    if (trimmed === '' || trimmed.startsWith('#')) return
    if (buffer === undefined) {
      buffer = ''
      start = index + 1
    }
    const content = raw.replace(/\s+$/, '')
    if (content.endsWith(escape)) {
      buffer += content.slice(0, -escape.length)
      return
    }
    buffer += content
    finish()
  })
  if (buffer !== undefined) finish()
  return instructions
}

/** Replace $NAME, ${NAME} and ${NAME:-default} from `vars`. */
export function expand (text: string, vars: Map<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_whole, braced?: string, fallback?: string, bare?: string) => {
    const value = vars.get((braced ?? bare) as string)
    return value !== undefined && value !== '' ? value : fallback ?? ''
  })
}

export function parseDockerfile (text: string): Dockerfile {
  const globalArgs = new Map<string, string | undefined>()
  const stages: Stage[] = []
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/)
      const platform = words[0]?.startsWith('--platform=') === true ? words.shift()?.slice('--platform='.length) : undefined
      const from = words[0] ?? ''
      const name = words.length >= 3 && words[1]?.toUpperCase() === 'AS' ? words[2] : undefined
      stages.push({ from, image: expand(from, globalArgs), name, platform, instructions: [instruction] })
    } else if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        const [key, ...value] = instruction.args.split('=')
        globalArgs.set((key as string).trim(), value.length > 0 ? value.join('=').trim().replace(/^"(.*)"$/, '$1') : undefined)
      }
    } else {
      (stages[stages.length - 1] as Stage).instructions.push(instruction)
    }
  }
  return { globalArgs, stages }
}

/** The arguments as an exec-form (JSON array of strings) list, or undefined for shell form. */
export function execForm (args: string): string[] | undefined {
  if (!args.trim().startsWith('[')) return undefined
  try {
    const parsed: unknown = JSON.parse(args)
    return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? parsed : undefined
  } catch {
    return undefined // Docker runs an invalid JSON array as a shell command
  }
}

/** Problems with an image reference: no tag (implicit latest) or the latest tag. Stage names and scratch are fine. */
export function imageTagProblems (image: string, stageNames: Set<string>): string[] {
  if (stageNames.has(image) || image === 'scratch') return []
  if (image === '') return ['FROM names no image']
  const [withoutDigest, digest] = image.split('@')
  const lastPart = (withoutDigest as string).split('/').pop() as string
  const tag = lastPart.includes(':') ? lastPart.slice(lastPart.indexOf(':') + 1) : undefined
  if (tag === 'latest') return [`${image} uses the latest tag`]
  if (tag === undefined && digest === undefined) return [`${image} has no tag, so it means latest`]
  if (tag === '') return [`${image} has an empty tag`]
  return []
}

export interface Healthcheck {
  options: Record<string, string>
  /** Exec-form arguments, or ['/bin/sh', '-c', command] for the shell form; undefined for NONE. */
  command?: string[]
}

export function parseHealthcheck (args: string): Healthcheck {
  const options: Record<string, string> = {}
  let rest = args.trim()
  for (let m = /^--([a-z-]+)=(\S+)\s+/.exec(rest); m !== null; m = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
    options[m[1] as string] = m[2] as string
    rest = rest.slice(m[0].length)
  }
  const keyword = /^(\S+)\s*([\s\S]*)$/.exec(rest)
  if (keyword?.[1]?.toUpperCase() === 'NONE') return { options }
  if (keyword?.[1]?.toUpperCase() !== 'CMD') throw new Error(`HEALTHCHECK needs CMD or NONE, got: ${args}`)
  const command = keyword[2] as string
  return { options, command: execForm(command) ?? ['/bin/sh', '-c', command] }
}

/** The last USER of a stage, or undefined (root). */
export function stageUser (stage: Stage): string | undefined {
  return stage.instructions.filter((i) => i.keyword === 'USER').pop()?.args
}

export function isRootUser (user: string | undefined): boolean {
  if (user === undefined) return true
  const name = user.split(':')[0]?.trim()
  return name === 'root' || name === '0' || name === ''
}
