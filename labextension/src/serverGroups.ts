/**
 * The sidebar's lists of things servers offer (tools, resources, prompts): searched by a
 * text and shown in groups, one per server.
 */

/**
 * Whether any of `texts` contains `query`, ignoring case and surrounding spaces; an
 * empty query matches everything.
 */
export function matchesQuery(
  query: string,
  ...texts: (string | null | undefined)[]
): boolean {
  const needle = query.trim().toLowerCase();
  return !needle || texts.some(t => (t ?? '').toLowerCase().includes(needle));
}

/**
 * The `items` whose `texts` match `query`, grouped by `server_id` (groups and items
 * in listing order).
 */
export function groupByServer<T extends { server_id: string }>(
  items: readonly T[],
  query: string,
  texts: (item: T) => (string | null | undefined)[]
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    if (matchesQuery(query, ...texts(item))) {
      const list = groups.get(item.server_id) ?? [];
      list.push(item);
      groups.set(item.server_id, list);
    }
  }
  return groups;
}
