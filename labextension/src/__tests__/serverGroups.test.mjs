// Unit tests of how the sidebar searches and groups what servers offer, on the compiled
// lib/ (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { groupByServer, matchesQuery } from '../../lib/serverGroups.js';

const items = [
  { server_id: 'north', name: 'greeting', description: 'Says hello' },
  { server_id: 'south', name: 'greeting', description: null },
  { server_id: 'north', name: 'report', description: 'A weekly REPORT' }
];
const texts = item => [item.name, item.description, item.server_id];

test('an empty query keeps every item, grouped by server in listing order', () => {
  const groups = groupByServer(items, '  ', texts);
  assert.deepEqual([...groups.keys()], ['north', 'south']);
  assert.deepEqual(groups.get('north').map(i => i.name), ['greeting', 'report']);
});

test('a query matches any text, ignoring case; servers without a match are left out', () => {
  assert.deepEqual([...groupByServer(items, 'report', texts).keys()], ['north']);
  assert.deepEqual(groupByServer(items, 'SOUTH', texts).get('south').length, 1);
  assert.equal(groupByServer(items, 'nothing', texts).size, 0);
  assert.equal(matchesQuery('hello', undefined, 'Says Hello'), true);
  assert.equal(matchesQuery('x', null, undefined), false);
});
