/**
 * What changed between two definitions of a tool, for people: for each field
 * that differs (description, input schema, annotations, ...), a line diff of
 * the old and the new value. Text fields are compared line by line as they
 * are; JSON fields as pretty JSON with sorted keys, so that a reordering is
 * not a change.
 */
import type { IToolDefinition } from './tokens';

/**
 * One line of a diff.
 */
export interface IDiffLine {
  kind: 'same' | 'removed' | 'added';
  text: string;
}

/**
 * The diff of one field of the definition.
 */
export interface IFieldDiff {
  field: string;
  label: string;
  lines: IDiffLine[];
}

/**
 * The fields dodo pins, in the order they are shown.
 */
export const DEFINITION_FIELDS: readonly [string, string][] = [
  ['name', 'Name'],
  ['title', 'Title'],
  ['description', 'Description'],
  ['inputSchema', 'Input schema'],
  ['outputSchema', 'Output schema'],
  ['annotations', 'Annotations']
];

/**
 * Beyond this many lines on a side, a diff shows every old line removed and
 * every new line added (the line diff is quadratic).
 */
export const MAX_DIFF_LINES = 2000;

/**
 * The fields that differ between `before` (null: a new tool) and `after`.
 * Fields the tools do not name are compared too, after the known ones.
 */
export function diffDefinitions(
  before: IToolDefinition | null,
  after: IToolDefinition | null
): IFieldDiff[] {
  const known = new Map(DEFINITION_FIELDS);
  const fields = [...DEFINITION_FIELDS.map(([field]) => field)];
  for (const field of [...Object.keys(before ?? {}), ...Object.keys(after ?? {})]) {
    if (!fields.includes(field)) {
      fields.push(field);
    }
  }
  const diffs: IFieldDiff[] = [];
  for (const field of fields) {
    const old = textOf(before?.[field]);
    const now = textOf(after?.[field]);
    if (old === now) {
      continue;
    }
    diffs.push({ field, label: known.get(field) ?? field, lines: diffLines(old, now) });
  }
  return diffs;
}

/**
 * A field's value as text: strings as they are, anything else as pretty JSON
 * with sorted keys; `null` when absent.
 */
export function textOf(value: unknown): string | null {
  if (value === undefined || value === null) {
    return null;
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(sortKeys(value), null, 2);
}

/**
 * A line diff of two texts (`null`: no text), by longest common subsequence.
 */
export function diffLines(before: string | null, after: string | null): IDiffLine[] {
  const a = before === null ? [] : before.split('\n');
  const b = after === null ? [] : after.split('\n');
  if (a.length > MAX_DIFF_LINES || b.length > MAX_DIFF_LINES) {
    return [
      ...a.map(text => ({ kind: 'removed' as const, text })),
      ...b.map(text => ({ kind: 'added' as const, text }))
    ];
  }
  // lengths[i][j]: the longest common subsequence of a[i:] and b[j:].
  const lengths: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0)
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lengths[i][j] =
        a[i] === b[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    }
  }
  const lines: IDiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      lines.push({ kind: 'same', text: a[i] });
      i++;
      j++;
    } else if (lengths[i + 1][j] >= lengths[i][j + 1]) {
      lines.push({ kind: 'removed', text: a[i++] });
    } else {
      lines.push({ kind: 'added', text: b[j++] });
    }
  }
  while (i < a.length) {
    lines.push({ kind: 'removed', text: a[i++] });
  }
  while (j < b.length) {
    lines.push({ kind: 'added', text: b[j++] });
  }
  return lines;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sortKeys);
  }
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
    }
    return sorted;
  }
  return value;
}
