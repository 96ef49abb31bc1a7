// Pure edits of a CPIX reply's text for tests: reshape one DRMSystem the way a KMS might have written it.

/** Edit the DRMSystem element for (kid, systemId); throws when there is none. */
export function editSystem (xml: string, kid: string, systemId: string, edit: (block: string) => string): string {
  let found = false
  const out = xml.replace(/<cpix:DRMSystem\b[^>]*>[\s\S]*?<\/cpix:DRMSystem>/g, block => {
    if (!block.includes(`kid="${kid}"`) || !block.toLowerCase().includes(`systemid="${systemId}"`)) return block
    found = true
    return edit(block)
  })
  if (!found) throw new Error(`no DRMSystem ${systemId} for ${kid}`)
  return out
}
