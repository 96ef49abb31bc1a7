// ESLint: neostandard (the project's style: no semicolons, two-space indent, space before parens) with TypeScript, code lines under 140.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', '.ci/node24/**', 'test/fixtures/**'] }),
  {
    rules: {
      // Code lines stay under 140 characters; a long message, test name or pattern stays whole on its line, so grep finds it.
      '@stylistic/max-len': ['error', { code: 140, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true }],
      // `void promise` marks a promise deliberately not awaited (a Fastify reply in a hook, a background flush).
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    // CloudFormation (!Sub) and Dockerfile text is checked as strings: their ${…} are not JavaScript templates.
    files: ['test/deploy/**'],
    rules: { 'no-template-curly-in-string': 'off' }
  }
]
