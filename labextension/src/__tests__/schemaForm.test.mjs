// Unit tests of the Try form's schema helpers, on the compiled lib/ (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildArguments, fieldsOf, initialValues } from '../../lib/schemaForm.js';

const schema = {
  type: 'object',
  properties: {
    text: { type: 'string', description: 'What to say' },
    count: { type: 'integer', default: 5 },
    ratio: { type: 'number' },
    loud: { type: 'boolean', default: false },
    mode: { enum: ['fast', 'slow'], default: 'slow' },
    options: { type: 'object', properties: { depth: { type: 'integer' } } },
    tags: { type: 'array', items: { type: 'string' } },
    maybe: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null, title: 'Maybe' }
  },
  required: ['text', 'mode']
};

test('fields follow the schema: kinds, required, defaults', () => {
  const fields = fieldsOf(schema);
  const byName = Object.fromEntries(fields.map(f => [f.name, f]));
  assert.deepEqual(
    fields.map(f => [f.name, f.kind]),
    [
      ['text', 'string'],
      ['count', 'integer'],
      ['ratio', 'number'],
      ['loud', 'boolean'],
      ['mode', 'enum'],
      ['options', 'json'],
      ['tags', 'json'],
      ['maybe', 'string']
    ]
  );
  assert.equal(byName.text.required, true);
  assert.equal(byName.count.required, false);
  assert.equal(byName.options.jsonType, 'object');
  assert.equal(byName.tags.jsonType, 'array');
  assert.equal(byName.maybe.label, 'Maybe');
  assert.deepEqual(initialValues(fields), {
    text: '',
    count: '5',
    ratio: '',
    loud: 'false',
    mode: '1',
    options: '',
    tags: '',
    maybe: ''
  });
});

test('values become typed arguments; empty optional fields are left out', () => {
  const fields = fieldsOf(schema);
  const values = {
    ...initialValues(fields),
    text: 'hi',
    ratio: '0.5',
    options: '{"depth": 2}',
    tags: '["a"]'
  };
  const { args, errors } = buildArguments(fields, values);
  assert.deepEqual(errors, {});
  assert.deepEqual(args, {
    text: 'hi',
    count: 5,
    ratio: 0.5,
    loud: false,
    mode: 'slow',
    options: { depth: 2 },
    tags: ['a']
  });
});

test('each bad value gets its own message', () => {
  const fields = fieldsOf(schema);
  const { errors } = buildArguments(fields, {
    text: '',
    count: '1.5',
    ratio: 'x',
    mode: '',
    options: '[1]',
    tags: '{',
    maybe: ''
  });
  assert.equal(errors.text, 'Required.');
  assert.equal(errors.count, 'Enter a whole number.');
  assert.equal(errors.ratio, 'Enter a number.');
  assert.equal(errors.mode, 'Required.');
  assert.equal(errors.options, 'Enter a JSON object ({…}).');
  assert.match(errors.tags, /^Not valid JSON/);
  assert.equal(errors.maybe, undefined);
});

test('a tool without input schema has no fields', () => {
  assert.deepEqual(fieldsOf(null), []);
  assert.deepEqual(fieldsOf({ type: 'object' }), []);
});
