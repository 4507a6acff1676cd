// Building query-language text from clicks (pure, no Vue, no DOM).
//
// The server's parser (src/domain/query) is the only judge of a query; this
// module only has to write terms that parse back to what was clicked, and to
// find the top-level terms of a query well enough to toggle the ones it wrote.
// When in doubt it quotes: a quoted value means the same (literal, still
// case-insensitive) as a bare one without `*`, so quoting is always safe.

/** Fields the language names by themselves; an attribute with such a name is written `@name`. */
export const BUILTIN_FIELDS = ['level', 'service', 'message', 'id'] as const

/** A facet or filter field: a built-in field or an attribute key. */
export interface FieldRef {
  attribute: boolean
  name: string
}

export function builtin(name: (typeof BUILTIN_FIELDS)[number]): FieldRef {
  return { attribute: false, name }
}

export function attribute(key: string): FieldRef {
  return { attribute: true, name: key }
}

function isBuiltinName(name: string): boolean {
  return (BUILTIN_FIELDS as readonly string[]).includes(name)
}

/** Keys the language reads as a term of its own before `:` (`pattern:"a <_> b"`); an attribute with such a name is written `@name` too. */
const RESERVED_KEYS: readonly string[] = ['pattern']

/**
 * A field as the API names it in `fields=` lists and facet answers:
 * `@key` always means the attribute `key`; a built-in name the field.
 */
export function fieldFromReference(ref: string): FieldRef {
  if (ref.startsWith('@')) return attribute(ref.slice(1))
  return isBuiltinName(ref) ? { attribute: false, name: ref } : attribute(ref)
}

/** The inverse of fieldFromReference (for `fields=` and the `facets=` URL parameter). */
export function fieldReference(field: FieldRef): string {
  if (!field.attribute) return field.name
  return isBuiltinName(field.name) || field.name.startsWith('@') ? `@${field.name}` : field.name
}

export function sameField(a: FieldRef, b: FieldRef): boolean {
  return a.attribute === b.attribute && a.name === b.name
}

/** `text` as a quoted string of the language: only `"` and `\` need a backslash. */
export function quote(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

// A key may stand bare when it is made of name characters (letters, digits,
// `_ . - /`) and does not start with `-`, which would read as a negation.
const BARE_KEY = /^[\p{L}\p{N}_./][\p{L}\p{N}_./-]*$/u
// A value may stand bare when nothing in it means something to the parser:
// no spaces, quotes, parentheses, `*` (wildcard), `:`, `~`, `<`, `>`, `\`.
const BARE_VALUE = /^[\p{L}\p{N}_./@+-]+$/u
const KEYWORDS = new Set(['AND', 'OR', 'NOT'])

/** How a query writes this field before `:` (`region`, `@level`, `"my key"`). */
export function fieldKey(field: FieldRef): string {
  if (!field.attribute) return field.name
  const written = BARE_KEY.test(field.name) ? field.name : quote(field.name)
  return isBuiltinName(field.name) || RESERVED_KEYS.includes(field.name) ? `@${written}` : written
}

/** A value written so it matches exactly this text (no wildcard, no comparison). */
export function formatValue(value: string): string {
  return BARE_VALUE.test(value) && !KEYWORDS.has(value) ? value : quote(value)
}

/** `field:value`, or `-field:value` to exclude it. */
export function fieldTerm(field: FieldRef, value: string, exclude = false): string {
  return `${exclude ? '-' : ''}${fieldKey(field)}:${formatValue(value)}`
}

// ---------------------------------------------------------------- top level

export type TokenKind = 'term' | 'and' | 'or'

export interface Token {
  kind: TokenKind
  /** The text as written (a `NOT` before a term belongs to the term). */
  text: string
  /** UTF-16 offsets into the query, end exclusive. */
  start: number
  end: number
}

export interface TopLevel {
  tokens: Token[]
  /** Quotes and parentheses balance: the split can be trusted. */
  balanced: boolean
  /** An `OR` at the top level: a new term must not be appended bare. */
  hasOr: boolean
}

function isSpace(c: string): boolean {
  return /\s/.test(c)
}

/** The end (exclusive) of one whitespace-free chunk starting at `i`, with quotes and parentheses kept whole. */
function chunkEnd(text: string, i: number): { end: number; balanced: boolean } {
  let depth = 0
  let quoted = false
  for (; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i++
      else if (c === '"') quoted = false
      continue
    }
    if (c === '"') quoted = true
    else if (c === '(') depth++
    else if (c === ')') {
      if (depth === 0) return { end: i + 1, balanced: false }
      depth--
    } else if (depth === 0 && isSpace(c)) return { end: i, balanced: true }
  }
  return { end: i, balanced: depth === 0 && !quoted }
}

/** The top-level terms and connectives of a query. */
export function splitTopLevel(text: string): TopLevel {
  const tokens: Token[] = []
  let balanced = true
  let pendingNot: number | null = null
  let i = 0
  while (i < text.length) {
    if (isSpace(text[i])) {
      i++
      continue
    }
    // A keyword stands alone before whitespace, a parenthesis or a quote (`OR(a b)`).
    const glued = /^(AND|OR|NOT)(?=[("])/.exec(text.slice(i, i + 4))
    const chunk = glued ? { end: i + glued[1].length, balanced: true } : chunkEnd(text, i)
    balanced &&= chunk.balanced
    const word = text.slice(i, chunk.end)
    if (word === 'NOT') {
      pendingNot ??= i
    } else if (word === 'AND' || word === 'OR') {
      tokens.push({ kind: word === 'AND' ? 'and' : 'or', text: word, start: i, end: chunk.end })
      pendingNot = null
    } else {
      const start = pendingNot ?? i
      tokens.push({ kind: 'term', text: text.slice(start, chunk.end), start, end: chunk.end })
      pendingNot = null
    }
    i = Math.max(chunk.end, i + 1)
  }
  return { tokens, balanced, hasOr: tokens.some((t) => t.kind === 'or') }
}

/** The query with `term` ANDed to it: `(a OR b) term` when the query has a top-level OR. */
export function addTerm(query: string, term: string): string {
  const q = query.trim()
  if (!q) return term
  const top = splitTopLevel(q)
  if (top.hasOr || !top.balanced) return `(${q}) ${term}`
  return `${q} ${term}`
}

/** The query without the top-level term at `index` (and an `AND` joining it). */
function removeToken(query: string, tokens: Token[], index: number): string {
  let from = tokens[index].start
  let to = tokens[index].end
  if (tokens[index - 1]?.kind === 'and') from = tokens[index - 1].start
  else if (tokens[index + 1]?.kind === 'and') to = tokens[index + 1].end
  return `${query.slice(0, from).trimEnd()} ${query.slice(to).trimStart()}`.trim()
}

/** The text of a quoted string starting at `i` and where it ends, or null when it is not closed. */
function readQuoted(text: string, i: number): { value: string; end: number } | null {
  let value = ''
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j]
    if (c === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) {
      value += text[++j]
    } else if (c === '"') {
      return { value, end: j + 1 }
    } else {
      value += c
    }
  }
  return null
}

/**
 * The values `field` is matched to exactly, or excluded from, by top-level
 * terms of the query written as fieldTerm writes them (what the sidebar shows
 * as active even when the value no longer occurs in the results).
 */
export function activeValues(query: string, field: FieldRef): { value: string; exclude: boolean }[] {
  const top = splitTopLevel(query)
  if (top.hasOr || !top.balanced) return []
  const key = fieldKey(field)
  const out: { value: string; exclude: boolean }[] = []
  for (const t of top.tokens) {
    if (t.kind !== 'term') continue
    const exclude = t.text.startsWith('-') || t.text.startsWith('NOT ')
    const body = t.text.replace(/^(-|NOT )/, '')
    if (!body.startsWith(`${key}:`)) continue
    const rest = body.slice(key.length + 1)
    let value: string | null = null
    if (rest.startsWith('"')) {
      const q = readQuoted(rest, 0)
      if (q && q.end === rest.length) value = q.value
    } else {
      value = rest
    }
    // Only what fieldTerm would write: not a wildcard, a comparison or a list.
    if (value !== null && fieldTerm(field, value) === body) out.push({ value, exclude })
  }
  return out
}

/** Whether `field:value` (or its exclusion) is a top-level term of the query, as fieldTerm writes it. */
export function termState(query: string, field: FieldRef, value: string): 'included' | 'excluded' | null {
  const hit = activeValues(query, field).find((a) => a.value === value)
  return hit ? (hit.exclude ? 'excluded' : 'included') : null
}

/**
 * What a click on a facet value (or an attribute) does to the query: add
 * `field:value` (or `-field:value`); the same click again removes it; the
 * other control swaps one for the other.
 */
export function toggleTerm(query: string, field: FieldRef, value: string, exclude = false): string {
  const q = query.trim()
  const top = splitTopLevel(q)
  const wanted = fieldTerm(field, value, exclude)
  if (top.hasOr || !top.balanced) return addTerm(q, wanted)
  const forms = new Set([fieldTerm(field, value), fieldTerm(field, value, true), `NOT ${fieldTerm(field, value)}`])
  const at = top.tokens.findIndex((t) => t.kind === 'term' && forms.has(t.text))
  if (at < 0) return addTerm(q, wanted)
  const without = removeToken(q, top.tokens, at)
  const wasExcluded = top.tokens[at].text !== fieldTerm(field, value)
  return wasExcluded === exclude ? without : addTerm(without, wanted)
}

// ---------------------------------------------------------------- errors

export interface PositionedText {
  /** Text before the fault. */
  before: string
  /** The character at the fault ('' when the query ended too early). */
  at: string
  after: string
  /** UTF-16 offset of the fault, for setSelectionRange. */
  offset: number
}

/**
 * Splits `text` at a 1-based character column as the API reports it
 * (characters, not bytes and not UTF-16 units: an emoji counts once).
 * A column past the end points just after the last character.
 */
export function splitAtColumn(text: string, position: number): PositionedText {
  const chars = Array.from(text)
  const index = Math.min(Math.max(1, Math.floor(position || 1)), chars.length + 1) - 1
  const before = chars.slice(0, index).join('')
  return { before, at: chars[index] ?? '', after: chars.slice(index + 1).join(''), offset: before.length }
}
