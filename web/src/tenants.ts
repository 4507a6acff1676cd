// The tenants the header's switcher offers. Pure, so it is unit-tested.

/**
 * `bound`: the tenants the key or sign-in is bound to (null: any);
 * `known`: tenants holding logs (an admin's list); `chosen`: the current
 * choice, kept even when the lists do not name it. Several bound tenants
 * also offer all of them at once (`a|b`), as X-Scope-OrgID takes them.
 */
export function tenantChoices(bound: string[] | null, known: string[], chosen: string | null): string[] {
  const out: string[] = []
  const add = (t: string) => {
    if (t && !out.includes(t)) out.push(t)
  }
  const base = bound ?? known
  for (const t of [...base].sort()) add(t)
  if (bound && bound.length > 1) add([...bound].sort().join('|'))
  if (chosen) add(chosen)
  return out
}
