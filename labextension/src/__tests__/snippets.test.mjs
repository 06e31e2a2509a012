// Unit tests of the client configuration snippets, on the compiled lib/ (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TOKEN_PLACEHOLDER, buildSnippets } from '../../lib/snippets.js';

const URL = 'https://hub.example.org/user/alice/dodo/mcp';

test('JSON snippets use the mcpServers shape with a bearer header', () => {
  const snippets = Object.fromEntries(buildSnippets(URL, 'dodo_a_b').map(s => [s.id, s]));
  for (const id of ['jupyter-ai', 'nbi']) {
    assert.deepEqual(JSON.parse(snippets[id].text), {
      mcpServers: { dodo: { url: URL, headers: { Authorization: 'Bearer dodo_a_b' } } }
    });
  }
  assert.match(snippets['jupyter-ai'].where, /\.jupyter\/mcp_settings\.json/);
  assert.equal(snippets.nbi.where, '~/.jupyter/nbi/mcp.json');
  assert.equal(JSON.parse(snippets.generic.text).type, 'streamable-http');
  assert.match(snippets['claude-code'].text, /^claude mcp add --transport http dodo https:/);
  assert.match(snippets['claude-code'].text, /--header "Authorization: Bearer dodo_a_b"/);
  assert.equal(snippets.magic.text, '%load_ext dodo_jupyter\n%dodo tools');
});

test('without a token, a placeholder', () => {
  const text = buildSnippets(URL, null).map(s => s.text).join('\n');
  assert.ok(text.includes(TOKEN_PLACEHOLDER));
});
