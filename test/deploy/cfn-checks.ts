// Static checks of CloudFormation templates written in YAML with short-form intrinsics (!Ref, !Sub, !GetAtt, …).
// Each check returns a list of problems (empty = fine), so the tests can also show that a broken template is caught.

import { parseDocument } from 'yaml'
import type { CollectionTag, ScalarTag } from 'yaml'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export interface Template {
  AWSTemplateFormatVersion?: string
  Parameters?: Record<string, JsonObject>
  Conditions?: Record<string, Json>
  Mappings?: Record<string, Json>
  Resources: Record<string, { Type: string, Properties?: JsonObject, DependsOn?: string | string[], Condition?: string }>
  Outputs?: Record<string, JsonObject>
}

/** Short-form intrinsic names; !Ref and !Condition keep their name in long form, the others become Fn::Name. */
const INTRINSICS = [
  'Ref', 'Condition', 'Sub', 'GetAtt', 'Join', 'Select', 'Split', 'If', 'Equals', 'Not', 'And', 'Or',
  'FindInMap', 'Base64', 'Cidr', 'GetAZs', 'ImportValue', 'Transform', 'Length', 'ToJsonString'
] as const

const PSEUDO_PARAMETERS = new Set([
  'AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region',
  'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix'
])

const longName = (name: string): string => (name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`)

/** yaml customTags: each short form as a scalar, a sequence and a mapping, resolved to the long (JSON) form. */
const cfnTags: Array<ScalarTag | CollectionTag> = INTRINSICS.flatMap((name) => {
  const key = longName(name)
  const scalar: ScalarTag = {
    tag: `!${name}`,
    // !GetAtt Resource.Attribute is the scalar spelling of ["Resource", "Attribute"] (the attribute may hold dots).
    resolve: (value: string) => (name === 'GetAtt' ? { [key]: splitGetAtt(value) } : { [key]: value })
  }
  const seq: CollectionTag = { tag: `!${name}`, collection: 'seq', resolve: (value) => ({ [key]: value.toJSON() }) }
  const map: CollectionTag = { tag: `!${name}`, collection: 'map', resolve: (value) => ({ [key]: value.toJSON() }) }
  return [scalar, seq, map]
})

function splitGetAtt (value: string): string[] {
  const dot = value.indexOf('.')
  return dot < 0 ? [value] : [value.slice(0, dot), value.slice(dot + 1)]
}

/** Parse a template; throws with every YAML error or warning (an unknown tag such as !Reff is one). */
export function parseTemplate (text: string): Template {
  const doc = parseDocument(text, { customTags: cfnTags, prettyErrors: false })
  const issues = [...doc.errors, ...doc.warnings]
  if (issues.length > 0) throw new Error(`template YAML: ${issues.map((e) => e.message).join('; ')}`)
  const template = doc.toJS() as Template
  if (template === null || typeof template !== 'object' || typeof template.Resources !== 'object' || template.Resources === null) {
    throw new Error('template has no Resources section')
  }
  return template
}

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value)

/** The ${…} variables of a Fn::Sub string, without the ${!Literal} escapes. */
export function subVariables (text: string): string[] {
  const names: string[] = []
  for (const match of text.matchAll(/\$\{([^}]*)\}/g)) {
    const name = (match[1] ?? '').trim()
    if (!name.startsWith('!')) names.push(name)
  }
  return names
}

/** Fn::Sub's template string and explicit variable names, whichever form it has. */
function subParts (value: Json): { text: string, vars: Set<string> } | undefined {
  if (typeof value === 'string') return { text: value, vars: new Set() }
  if (Array.isArray(value) && typeof value[0] === 'string' && (value.length === 1 || isObject(value[1]))) {
    return { text: value[0], vars: new Set(isObject(value[1]) ? Object.keys(value[1]) : []) }
  }
  return undefined
}

/** Every Ref, ${Name} in Fn::Sub, Fn::GetAtt, Fn::If/Condition and DependsOn names something that exists. */
export function referenceProblems (template: Template): string[] {
  const problems: string[] = []
  const parameters = new Set(Object.keys(template.Parameters ?? {}))
  const resources = new Set(Object.keys(template.Resources))
  const conditions = new Set(Object.keys(template.Conditions ?? {}))
  const mappings = new Set(Object.keys(template.Mappings ?? {}))
  const known = (name: string): boolean => parameters.has(name) || resources.has(name) || PSEUDO_PARAMETERS.has(name)

  const walk = (node: Json, where: string): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${where}[${i}]`))
      return
    }
    if (!isObject(node)) return
    const keys = Object.keys(node)
    if (keys.length === 1) {
      const [fn] = keys as [string]
      const arg = node[fn] as Json
      if (fn === 'Ref') {
        if (typeof arg !== 'string') problems.push(`${where}: Ref needs a name`)
        else if (!known(arg)) problems.push(`${where}: Ref ${arg} is not a parameter, resource or pseudo-parameter`)
        return
      }
      if (fn === 'Fn::Sub') {
        const parts = subParts(arg)
        if (parts === undefined) {
          problems.push(`${where}: Fn::Sub needs a string or [string, {variables}]`)
          return
        }
        for (const name of subVariables(parts.text)) {
          if (parts.vars.has(name)) continue
          const dot = name.indexOf('.')
          if (dot > 0) {
            if (!resources.has(name.slice(0, dot))) problems.push(`${where}: Fn::Sub \${${name}} names no resource`)
          } else if (!known(name)) {
            problems.push(`${where}: Fn::Sub \${${name}} is not a parameter, resource or pseudo-parameter`)
          }
        }
        if (Array.isArray(arg) && arg[1] !== undefined) walk(arg[1], `${where}.Fn::Sub[1]`)
        return
      }
      if (fn === 'Fn::GetAtt') {
        const target = Array.isArray(arg) ? arg[0] : typeof arg === 'string' ? splitGetAtt(arg)[0] : undefined
        const attribute = Array.isArray(arg) ? arg[1] : typeof arg === 'string' ? splitGetAtt(arg)[1] : undefined
        if (typeof target !== 'string' || !resources.has(target)) problems.push(`${where}: Fn::GetAtt ${String(target)} names no resource`)
        if (attribute === undefined || attribute === '') problems.push(`${where}: Fn::GetAtt ${String(target)} has no attribute`)
        return
      }
      if (fn === 'Fn::If' || fn === 'Condition') {
        const name = fn === 'Condition' ? arg : Array.isArray(arg) ? arg[0] : undefined
        if (typeof name !== 'string' || !conditions.has(name)) problems.push(`${where}: ${fn} ${String(name)} names no condition`)
        if (fn === 'Fn::If' && Array.isArray(arg)) arg.slice(1).forEach((item, i) => walk(item, `${where}.Fn::If[${i + 1}]`))
        return
      }
      if (fn === 'Fn::FindInMap' && Array.isArray(arg) && typeof arg[0] === 'string' && !mappings.has(arg[0])) {
        problems.push(`${where}: Fn::FindInMap ${arg[0]} names no mapping`)
      }
    }
    for (const key of keys) walk(node[key] as Json, `${where}.${key}`)
  }

  for (const [id, resource] of Object.entries(template.Resources)) {
    const where = `Resources.${id}`
    if (resource.Properties !== undefined) walk(resource.Properties, `${where}.Properties`)
    if (resource.Condition !== undefined && !conditions.has(resource.Condition)) problems.push(`${where}.Condition: ${resource.Condition} names no condition`)
    if (resource.DependsOn !== undefined) {
      const targets = Array.isArray(resource.DependsOn) ? resource.DependsOn : [resource.DependsOn]
      for (const target of targets) {
        if (target === id) problems.push(`${where}.DependsOn: ${id} depends on itself`)
        else if (typeof target !== 'string' || !resources.has(target)) problems.push(`${where}.DependsOn: ${String(target)} is not a resource`)
      }
    }
  }
  for (const [id, output] of Object.entries(template.Outputs ?? {})) walk(output, `Outputs.${id}`)
  for (const [id, condition] of Object.entries(template.Conditions ?? {})) walk(condition, `Conditions.${id}`)
  return problems
}

/** Substitute ${…} in a Fn::Sub string from `values`; throws on a variable without a value. */
export function renderSub (value: Json, values: Record<string, string>): string {
  const parts = subParts(value)
  if (parts === undefined) throw new Error(`not a Fn::Sub argument: ${JSON.stringify(value)}`)
  return parts.text.replace(/\$\{([^}]*)\}/g, (whole, raw: string) => {
    const name = raw.trim()
    if (name.startsWith('!')) return `\${${name.slice(1)}}`
    const v = values[name]
    if (v === undefined) throw new Error(`no value for \${${name}}`)
    return v
  })
}

export function resourcesOfType (template: Template, type: string): Array<[string, JsonObject]> {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, r.Properties ?? {}])
}

/** The URL path of an API Gateway resource reference: !GetAtt Api.RootResourceId is "", !Ref Resource adds "/PathPart". */
export function apiPath (template: Template, ref: Json, seen: Set<string> = new Set()): string {
  if (isObject(ref) && Array.isArray(ref['Fn::GetAtt']) && ref['Fn::GetAtt'][1] === 'RootResourceId') return ''
  if (isObject(ref) && typeof ref.Ref === 'string') {
    const id = ref.Ref
    const resource = template.Resources[id]
    if (resource?.Type !== 'AWS::ApiGateway::Resource') throw new Error(`${id} is not an AWS::ApiGateway::Resource`)
    if (seen.has(id)) throw new Error(`resource path loops at ${id}`)
    seen.add(id)
    const props = resource.Properties ?? {}
    return `${apiPath(template, props.ParentId as Json, seen)}/${String(props.PathPart)}`
  }
  throw new Error(`cannot follow resource reference ${JSON.stringify(ref)}`)
}

/** "POST /cpix/getKey" → logical id of the AWS::ApiGateway::Method. */
export function methodRoutes (template: Template): Map<string, string> {
  const routes = new Map<string, string>()
  for (const [id, props] of resourcesOfType(template, 'AWS::ApiGateway::Method')) {
    routes.set(`${String(props.HttpMethod)} ${apiPath(template, props.ResourceId as Json)}`, id)
  }
  return routes
}

export function methodAuthorizationProblems (template: Template): string[] {
  const methods = resourcesOfType(template, 'AWS::ApiGateway::Method')
  if (methods.length === 0) return ['the template has no AWS::ApiGateway::Method']
  return methods
    .filter(([, props]) => props.AuthorizationType !== 'AWS_IAM')
    .map(([id, props]) => `${id}: AuthorizationType is ${JSON.stringify(props.AuthorizationType)}, not AWS_IAM`)
}

const asList = (value: Json | undefined): Json[] => (value === undefined ? [] : Array.isArray(value) ? value : [value])

/** The role must trust exactly `services` (sts:AssumeRole) and no other principal. */
export function trustProblems (template: Template, roleId: string, services: string[]): string[] {
  const role = template.Resources[roleId]
  if (role?.Type !== 'AWS::IAM::Role') return [`${roleId} is not an AWS::IAM::Role`]
  const doc = role.Properties?.AssumeRolePolicyDocument
  if (!isObject(doc)) return [`${roleId} has no AssumeRolePolicyDocument`]
  const problems: string[] = []
  const trusted: string[] = []
  for (const statement of asList(doc.Statement)) {
    if (!isObject(statement) || statement.Effect !== 'Allow') continue
    if (!asList(statement.Action).includes('sts:AssumeRole')) problems.push(`${roleId}: a trust statement does not allow sts:AssumeRole`)
    const principal = statement.Principal
    if (!isObject(principal)) {
      problems.push(`${roleId}: trust principal ${JSON.stringify(principal)} is not a service`)
      continue
    }
    for (const [kind, value] of Object.entries(principal)) {
      if (kind !== 'Service') problems.push(`${roleId}: trusts a ${kind} principal`)
      else trusted.push(...asList(value).map(String))
    }
  }
  const want = [...services].sort()
  const got = [...trusted].sort()
  if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${roleId} trusts ${JSON.stringify(got)}, expected exactly ${JSON.stringify(want)}`)
  return problems
}

/** Allow statements of the role's inline policies as { actions, resources (rendered with `values`) }. */
export function roleAllows (
  template: Template, roleId: string, values: Record<string, string>
): Array<{ actions: string[], resources: string[] }> {
  const allows: Array<{ actions: string[], resources: string[] }> = []
  for (const policy of asList(template.Resources[roleId]?.Properties?.Policies)) {
    if (!isObject(policy) || !isObject(policy.PolicyDocument)) continue
    for (const statement of asList(policy.PolicyDocument.Statement)) {
      if (!isObject(statement) || statement.Effect !== 'Allow') continue
      const resources = asList(statement.Resource).map((r) => {
        if (typeof r === 'string') return r
        if (isObject(r) && r['Fn::Sub'] !== undefined) return renderSub(r['Fn::Sub'] as Json, values)
        return JSON.stringify(r)
      })
      allows.push({ actions: asList(statement.Action).map(String), resources })
    }
  }
  return allows
}
