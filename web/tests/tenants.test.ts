import { describe, expect, it } from 'vitest'
import { tenantChoices } from '../src/tenants'

describe('tenantChoices', () => {
  it('offers each bound tenant and all of them together', () => {
    expect(tenantChoices(['team-b', 'team-a'], ['x'], null)).toEqual(['team-a', 'team-b', 'team-a|team-b'])
  })
  it('offers an admin allowed any tenant the tenants holding logs', () => {
    expect(tenantChoices(null, ['b', 'a'], null)).toEqual(['a', 'b'])
  })
  it('keeps the current choice even when no list names it', () => {
    expect(tenantChoices(null, [], 'team-z')).toEqual(['team-z'])
    expect(tenantChoices(['a'], [], 'a')).toEqual(['a'])
  })
})
