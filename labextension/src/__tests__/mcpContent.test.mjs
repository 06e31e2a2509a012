// Unit tests of the Resources and Prompts sections' helpers, on the compiled lib/ (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MAX_SHOWN_TEXT,
  base64Size,
  downloadName,
  expandTemplate,
  formatBytes,
  promptSchema,
  templateVariables,
  viewOf
} from '../../lib/mcpContent.js';
import { buildArguments, fieldsOf } from '../../lib/schemaForm.js';

test('contents are shown as what they are', () => {
  const png = Buffer.from('PNG fake bytes!').toString('base64');
  assert.deepEqual(viewOf({ uri: 'u', mimeType: 'image/png', blob: png }), {
    kind: 'image',
    mime: 'image/png',
    size: 15,
    dataUrl: `data:image/png;base64,${png}`
  });
  // SVG can carry scripts: offered as bytes, never as an <img>.
  assert.equal(viewOf({ uri: 'u', mimeType: 'image/svg+xml', blob: png }).kind, 'binary');
  assert.deepEqual(viewOf({ uri: 'u', mimeType: 'application/json', text: '{"a":[1]}' }), {
    kind: 'json',
    mime: 'application/json',
    text: '{\n  "a": [\n    1\n  ]\n}',
    truncated: false
  });
  // JSON by its shape when the server gives no type; not when the type says otherwise.
  assert.equal(viewOf({ uri: 'u', text: '[1, 2]' }).kind, 'json');
  assert.equal(viewOf({ uri: 'u', mimeType: 'text/markdown', text: '[link](x)' }).kind, 'text');
  assert.equal(viewOf({ uri: 'u', mimeType: 'application/json', text: '{nope' }).kind, 'text');
  const html = viewOf({ uri: 'u', mimeType: 'text/html', text: '<script>x</script>' });
  assert.deepEqual(html, {
    kind: 'text',
    mime: 'text/html',
    text: '<script>x</script>',
    truncated: false
  });
  const long = viewOf({ uri: 'u', mimeType: 'text/plain', text: 'x'.repeat(MAX_SHOWN_TEXT + 5) });
  assert.equal(long.truncated, true);
  assert.equal(long.text.length, MAX_SHOWN_TEXT);
  const binary = viewOf({ uri: 'u', mimeType: 'Application/Octet-Stream; x=1', blob: 'AAEC\nAw==' });
  assert.deepEqual(binary, {
    kind: 'binary',
    mime: 'application/octet-stream',
    size: 4,
    base64: 'AAECAw=='
  });
});

test('sizes and download names', () => {
  assert.equal(base64Size(''), 0);
  assert.equal(base64Size('QQ=='), 1);
  assert.equal(base64Size('QUI='), 2);
  assert.equal(base64Size('QUJD'), 3);
  assert.equal(formatBytes(1), '1 byte');
  assert.equal(formatBytes(1536), '1.5 KB');
  assert.equal(formatBytes(3 * 1024 * 1024), '3.0 MB');
  assert.equal(downloadName('dodo://north/note://data.bin', 'application/octet-stream'), 'data.bin');
  assert.equal(downloadName('dodo://n/file:///a/report?x=1', 'application/pdf'), 'report.pdf');
  assert.equal(downloadName('dodo://n/x:/../..', ''), 'resource');
  assert.equal(downloadName('dodo://n/note://we ird$name', ''), 'we_ird_name');
});

test('templates expand with encoded values', () => {
  const template = 'dodo://docs/file:///{dir}/{name}.{dir}';
  assert.deepEqual(templateVariables(template), ['dir', 'name']);
  assert.equal(
    expandTemplate(template, { dir: 'a b', name: 'c/d' }),
    'dodo://docs/file:///a%20b/c%2Fd.a%20b'
  );
});

test('prompt arguments become a form of texts', () => {
  const prompt = {
    name: 'north__greeting',
    server_id: 'north',
    original_name: 'greeting',
    arguments: [
      { name: 'who', required: true, description: 'Whom to greet' },
      { name: 'mood', title: 'Mood' }
    ]
  };
  const fields = fieldsOf(promptSchema(prompt));
  assert.deepEqual(
    fields.map(f => [f.name, f.kind, f.required, f.label, f.description]),
    [
      ['who', 'string', true, 'who', 'Whom to greet'],
      ['mood', 'string', false, 'Mood', '']
    ]
  );
  assert.deepEqual(buildArguments(fields, { who: '', mood: '' }).errors, { who: 'Required.' });
  assert.deepEqual(buildArguments(fields, { who: 'Ada', mood: '' }).args, { who: 'Ada' });
  assert.deepEqual(promptSchema({ ...prompt, arguments: undefined }), {
    type: 'object',
    properties: {},
    required: []
  });
});
