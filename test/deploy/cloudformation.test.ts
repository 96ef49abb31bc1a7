// Static checks of deploy/aws/speke-proxy-apigateway.yaml: references resolve, every method is IAM-authorized,
// the key request is forwarded with enc-token and X-Speke-Version, and the SPEKE role is scoped as AWS expects.
// Each check also runs on a deliberately broken copy, to show it can fail.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Json, JsonObject, Template } from './cfn-checks.js'
import {
  apiPath, methodAuthorizationProblems, methodRoutes, parseTemplate, referenceProblems, renderSub,
  resourcesOfType, roleAllows, subVariables, trustProblems
} from './cfn-checks.js'

const FILE = fileURLToPath(new URL('../../deploy/aws/speke-proxy-apigateway.yaml', import.meta.url))
const TEXT = readFileSync(FILE, 'utf8')
const template = parseTemplate(TEXT)
const copy = (): Template => structuredClone(template)
const props = (tpl: Template, id: string): JsonObject => {
  const p = tpl.Resources[id]?.Properties
  if (p === undefined) throw new Error(`no resource ${id}`)
  return p
}

const ROLE = 'SpekeAccessRole'
const SERVICES = ['mediaconvert.amazonaws.com', 'mediapackage.amazonaws.com', 'mediapackagev2.amazonaws.com']
/** Sample values for rendering !Sub strings. */
const VALUES: Record<string, string> = {
  RestApi: 'a1b2c3d4e5',
  StageName: 'prod',
  ProxyUrl: 'https://speke.example.com',
  'AWS::Region': 'eu-west-1',
  'AWS::AccountId': '123456789012',
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'speke-proxy-api'
}
const GETKEY = 'POST /cpix/getKey'
const HEARTBEAT = 'GET /cpix/getKey/heartbeat'

/** The forwarding problems of the POST /cpix/getKey method. */
function forwardingProblems (tpl: Template): string[] {
  const id = methodRoutes(tpl).get(GETKEY)
  if (id === undefined) return [`no method for ${GETKEY}`]
  const method = props(tpl, id)
  const integration = (method.Integration ?? {}) as JsonObject
  const problems: string[] = []
  if (integration.Type !== 'HTTP_PROXY') problems.push(`Integration.Type is ${JSON.stringify(integration.Type)}`)
  if (integration.IntegrationHttpMethod !== 'POST') problems.push(`IntegrationHttpMethod is ${JSON.stringify(integration.IntegrationHttpMethod)}`)
  const uri = integration.Uri as JsonObject | undefined
  if (uri?.['Fn::Sub'] === undefined || renderSub(uri['Fn::Sub'], VALUES) !== `${VALUES.ProxyUrl}/cpix/getKey`) {
    problems.push(`Integration.Uri ${JSON.stringify(uri)} is not \${ProxyUrl}/cpix/getKey`)
  }
  const mapped = (integration.RequestParameters ?? {}) as JsonObject
  const declared = (method.RequestParameters ?? {}) as JsonObject
  for (const [target, source] of [
    ['integration.request.querystring.enc-token', 'method.request.querystring.enc-token'],
    ['integration.request.header.X-Speke-Version', 'method.request.header.X-Speke-Version']
  ] as const) {
    if (mapped[target] !== source) problems.push(`${target} is ${JSON.stringify(mapped[target])}, expected ${source}`)
    // API Gateway refuses a mapping from a method parameter that the method does not declare.
    if (typeof declared[source] !== 'boolean') problems.push(`the method does not declare ${source}`)
  }
  return problems
}

function setProp (tpl: Template, id: string, path: string[], value: Json | undefined): Template {
  let node = props(tpl, id) as Record<string, Json>
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, Json>
  const last = path[path.length - 1] as string
  if (value === undefined) Reflect.deleteProperty(node, last)
  else node[last] = value
  return tpl
}

t.test('the template parses with short-form intrinsics into a CloudFormation template', async (t) => {
  t.equal(template.AWSTemplateFormatVersion, '2010-09-09')
  t.same(props(template, 'GetKeyResource').RestApiId, { Ref: 'RestApi' }, '!Ref RestApi → {Ref: RestApi}')
  t.same(props(template, 'CpixResource').ParentId, { 'Fn::GetAtt': ['RestApi', 'RootResourceId'] }, '!GetAtt A.B → Fn::GetAtt [A, B]')
  t.same(template.Outputs?.RoleArn?.Value, { 'Fn::GetAtt': [ROLE, 'Arn'] })
  t.throws(() => parseTemplate(TEXT.replace('!Ref RestApi', '!Reff RestApi')), /template YAML/, 'an unknown tag is a parse error')
  t.throws(() => parseTemplate('Parameters: {}\n'), /no Resources/, 'a file without Resources is refused')
  // The sequence and mapping forms of the tags resolve too.
  const forms = parseTemplate([
    'Resources:',
    '  X:',
    '    Type: AWS::SNS::Topic',
    '    Properties:',
    '      TopicName: !Join ["-", [!Ref "AWS::StackName", !Select [0, !Split [",", "a,b"]]]]',
    '      DisplayName: !Sub ["${A}", {A: !GetAtt [Y, Name]}]',
    '      Tags: !If [C, !Base64 "x", !FindInMap [M, k, v]]'
  ].join('\n'))
  t.same(forms.Resources.X?.Properties, {
    TopicName: { 'Fn::Join': ['-', [{ Ref: 'AWS::StackName' }, { 'Fn::Select': [0, { 'Fn::Split': [',', 'a,b'] }] }]] },
    DisplayName: { 'Fn::Sub': ['${A}', { A: { 'Fn::GetAtt': ['Y', 'Name'] } }] },
    Tags: { 'Fn::If': ['C', { 'Fn::Base64': 'x' }, { 'Fn::FindInMap': ['M', 'k', 'v'] }] }
  })
})

t.test('parameters: ProxyUrl (https only) and StageName defaulting to prod', async (t) => {
  const parameters = template.Parameters ?? {}
  t.equal(parameters.ProxyUrl?.Type, 'String')
  t.equal(parameters.StageName?.Type, 'String')
  t.equal(parameters.StageName?.Default, 'prod')
  const pattern = new RegExp(String(parameters.ProxyUrl?.AllowedPattern))
  t.ok(pattern.test('https://speke.example.com'), 'an https URL is accepted')
  t.ok(pattern.test('https://alb-123.eu-west-1.elb.amazonaws.com/base'), 'an https URL with a base path is accepted')
  t.notOk(pattern.test('http://speke.example.com'), 'plain http is refused')
  t.notOk(pattern.test('https://speke.example.com/'), 'a trailing slash (→ //cpix/getKey) is refused')
  t.notOk(pattern.test('https://speke.example.com?x=1'), 'a query string is refused')
})

t.test('every !Ref, ${…} in !Sub, !GetAtt and DependsOn resolves', async (t) => {
  t.same(referenceProblems(template), [], 'no dangling references')
  t.ok(subVariables('${AWS::Region}-${!Literal}-${Res.Attr}').length === 2, '${!Literal} is not a variable')

  const broken = (from: string, to: string): string[] => {
    t.ok(TEXT.includes(from), `the template contains ${from}`)
    return referenceProblems(parseTemplate(TEXT.replace(from, to)))
  }
  t.match(broken('!Ref GetKeyResource', '!Ref GetKeyResourc'), [/Ref GetKeyResourc is not/], 'a dangling !Ref is caught')
  t.match(broken('${ProxyUrl}/cpix/getKey\'', '${ProxyURL}/cpix/getKey\''), [/\$\{ProxyURL\} is not/], 'a dangling ${Name} in !Sub is caught')
  t.match(broken('${AWS::Region}:${AWS::AccountId}', '${AWS::Regoin}:${AWS::AccountId}'), [/\$\{AWS::Regoin\}/], 'an unknown pseudo-parameter is caught')
  t.match(broken('!GetAtt SpekeAccessRole.Arn', '!GetAtt SpekeRole.Arn'), [/GetAtt SpekeRole names no resource/], 'a dangling !GetAtt is caught')
  t.match(broken('!GetAtt RestApi.RootResourceId', '!GetAtt RestApi'), [/has no attribute/], 'a !GetAtt without attribute is caught')
  t.match(broken('      - HeartbeatMethod', '      - HeartbeatMethd'), [/DependsOn: HeartbeatMethd is not a resource/], 'a dangling DependsOn is caught')
  const explicit = (ref: string): string[] => broken("Uri: !Sub '${ProxyUrl}/cpix/getKey'", `Uri: !Sub ['\${X}/cpix/getKey', {X: !Ref ${ref}}]`)
  t.same(explicit('ProxyUrl'), [], 'a variable given to !Sub explicitly resolves')
  t.match(explicit('ProxyUri'), [/Ref ProxyUri is not/], 'a dangling !Ref inside the !Sub variables is caught')
})

t.test('the API has exactly the SPEKE routes, each IAM-authorized', async (t) => {
  t.equal(resourcesOfType(template, 'AWS::ApiGateway::RestApi').length, 1, 'one REST API')
  const routes = methodRoutes(template)
  t.same([...routes.keys()].sort(), [HEARTBEAT, GETKEY].sort())
  t.same(methodAuthorizationProblems(template), [])
  t.match(methodAuthorizationProblems(setProp(copy(), 'HeartbeatMethod', ['AuthorizationType'], 'NONE')), [/HeartbeatMethod: AuthorizationType is "NONE"/], 'an open method is caught')
  t.match(methodAuthorizationProblems(setProp(copy(), 'GetKeyMethod', ['AuthorizationType'], undefined)), [/GetKeyMethod/], 'a method without AuthorizationType is caught')
  t.throws(() => apiPath(template, { Ref: 'RestApi' }), /not an AWS::ApiGateway::Resource/)
})

t.test('POST /cpix/getKey is proxied to ${ProxyUrl}/cpix/getKey with enc-token and X-Speke-Version', async (t) => {
  t.same(forwardingProblems(template), [])
  const id = methodRoutes(template).get(GETKEY) as string
  t.match(forwardingProblems(setProp(copy(), id, ['Integration', 'RequestParameters', 'integration.request.querystring.enc-token'], undefined)), [/enc-token is undefined/], 'a dropped enc-token mapping is caught')
  t.match(forwardingProblems(setProp(copy(), id, ['Integration', 'RequestParameters', 'integration.request.header.X-Speke-Version'], 'method.request.header.X-Other')), [/X-Speke-Version is "method.request.header.X-Other"/], 'a wrong header mapping is caught')
  t.match(forwardingProblems(setProp(copy(), id, ['RequestParameters'], undefined)), [/does not declare method.request.querystring.enc-token/, /does not declare method.request.header.X-Speke-Version/], 'undeclared method parameters are caught')
  t.match(forwardingProblems(setProp(copy(), id, ['Integration', 'Uri'], { 'Fn::Sub': '${ProxyUrl}/getKey' })), [/Integration.Uri/], 'a wrong upstream path is caught')
  t.match(forwardingProblems(setProp(copy(), id, ['Integration', 'Type'], 'HTTP')), [/Integration.Type is "HTTP"/], 'a non-proxy integration is caught')

  const heartbeat = props(template, methodRoutes(template).get(HEARTBEAT) as string).Integration as JsonObject
  t.equal(heartbeat.Type, 'HTTP_PROXY')
  t.equal(heartbeat.IntegrationHttpMethod, 'GET')
  t.equal(renderSub((heartbeat.Uri as JsonObject)['Fn::Sub'] as Json, VALUES), 'https://speke.example.com/cpix/getKey/heartbeat')
})

t.test('a deployment of every method and a stage named by StageName', async (t) => {
  const deployments = resourcesOfType(template, 'AWS::ApiGateway::Deployment')
  t.equal(deployments.length, 1)
  const [deploymentId] = deployments[0] as [string, JsonObject]
  const dependsOn = [template.Resources[deploymentId]?.DependsOn ?? []].flat()
  for (const method of methodRoutes(template).values()) {
    t.ok(dependsOn.includes(method), `the deployment waits for ${method} (an API without methods cannot be deployed)`)
  }
  const stages = resourcesOfType(template, 'AWS::ApiGateway::Stage')
  t.equal(stages.length, 1)
  const stage = (stages[0] as [string, JsonObject])[1]
  t.same(stage.DeploymentId, { Ref: deploymentId })
  t.same(stage.RestApiId, { Ref: 'RestApi' })
  t.same(stage.StageName, { Ref: 'StageName' })
})

t.test('SpekeAccessRole trusts exactly MediaConvert, MediaPackage and MediaPackage v2', async (t) => {
  t.same(trustProblems(template, ROLE, SERVICES), [])
  const statement = (tpl: Template): JsonObject => {
    const document = props(tpl, ROLE).AssumeRolePolicyDocument as JsonObject
    return (document.Statement as Json[])[0] as JsonObject
  }
  const extra = copy()
  ;((statement(extra).Principal as JsonObject).Service as Json[]).push('lambda.amazonaws.com')
  t.match(trustProblems(extra, ROLE, SERVICES), [/expected exactly/], 'a fourth trusted service is caught')
  const missing = copy()
  ;((statement(missing).Principal as JsonObject).Service as Json[]).pop()
  t.match(trustProblems(missing, ROLE, SERVICES), [/expected exactly/], 'a missing service is caught')
  const account = copy()
  ;(statement(account).Principal as JsonObject).AWS = '*'
  t.match(trustProblems(account, ROLE, SERVICES), [/trusts a AWS principal/], 'an AWS principal is caught')
  const action = copy()
  statement(action).Action = 'sts:TagSession'
  t.match(trustProblems(action, ROLE, SERVICES), [/does not allow sts:AssumeRole/], 'a trust without sts:AssumeRole is caught')
})

t.test('SpekeAccessRole may invoke only the POST /cpix/getKey method', async (t) => {
  const expected = (stage: string): string =>
    `arn:aws:execute-api:eu-west-1:123456789012:${VALUES.RestApi}/${stage}/${GETKEY.replace(' ', '')}`
  const invokeProblems = (tpl: Template): string[] => {
    const allows = roleAllows(tpl, ROLE, VALUES)
    const problems: string[] = []
    const invoke = allows.filter((a) => a.actions.includes('execute-api:Invoke'))
    if (invoke.length === 0) problems.push('no statement allows execute-api:Invoke')
    for (const a of allows) {
      if (a.actions.some((x) => x.includes('*'))) problems.push(`wildcard action in ${JSON.stringify(a.actions)}`)
      if (a.actions.some((x) => x !== 'execute-api:Invoke')) problems.push(`unexpected action in ${JSON.stringify(a.actions)}`)
      if (JSON.stringify(a.resources) !== JSON.stringify([expected(VALUES.StageName as string)])) problems.push(`resources ${JSON.stringify(a.resources)}`)
    }
    return problems
  }
  t.same(invokeProblems(template), [])
  t.same(roleAllows(template, ROLE, { ...VALUES, StageName: 'dev' })[0]?.resources, [expected('dev')], 'the ARN follows StageName')
  const policy = (tpl: Template): JsonObject => (((props(tpl, ROLE).Policies as Json[])[0] as JsonObject).PolicyDocument as JsonObject)
  const wrongAction = copy()
  ;((policy(wrongAction).Statement as Json[])[0] as JsonObject).Action = 'execute-api:ManageConnections'
  t.match(invokeProblems(wrongAction), ['no statement allows execute-api:Invoke'], 'a policy without execute-api:Invoke is caught')
  const wildcard = copy()
  ;((policy(wildcard).Statement as Json[])[0] as JsonObject).Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RestApi}/*' }
  t.match(invokeProblems(wildcard), [/resources/], 'a broader resource is caught')
  const heartbeatArn = copy()
  ;((policy(heartbeatArn).Statement as Json[])[0] as JsonObject).Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RestApi}/${StageName}/GET/cpix/getKey/heartbeat' }
  t.match(invokeProblems(heartbeatArn), [/resources/], 'the ARN of another method is caught')
})

t.test('outputs: SpekeUrl on the stage and the role ARN', async (t) => {
  const outputs = template.Outputs ?? {}
  const spekeUrl = (outputs.SpekeUrl?.Value as JsonObject | undefined)?.['Fn::Sub']
  t.ok(spekeUrl !== undefined, 'SpekeUrl is a !Sub')
  t.equal(renderSub(spekeUrl as Json, VALUES), 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/cpix/getKey')
  for (const name of ['RestApi', 'AWS::Region', 'StageName']) t.ok(subVariables(String(spekeUrl)).includes(name), `SpekeUrl uses \${${name}}`)
  // The URL's path after the stage is the route the role may invoke.
  t.equal(new URL(renderSub(spekeUrl as Json, VALUES)).pathname, `/prod${GETKEY.split(' ')[1] as string}`)
  t.same(outputs.RoleArn?.Value, { 'Fn::GetAtt': [ROLE, 'Arn'] })
})
