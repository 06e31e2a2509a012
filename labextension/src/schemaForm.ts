/**
 * Pure helpers behind the "Try" form: a tool's JSON Schema `inputSchema` to
 * form fields, and the form's text values back to tool arguments.
 *
 * Top-level properties become fields: strings, numbers, integers, booleans and
 * enums get their own inputs; anything else (objects, arrays, unions of those,
 * or no type at all) is typed as JSON. Every value is kept as text while the
 * user edits it and converted, with a message per bad field, on submit.
 */
import type { IJSONSchema } from './tokens';

/**
 * The kind of input a field gets.
 */
export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

/**
 * One input of the form.
 */
export interface IField {
  name: string;
  label: string;
  kind: FieldKind;
  /**
   * For `json` fields: the JSON type expected, when the schema says.
   */
  jsonType: 'object' | 'array' | null;
  required: boolean;
  description: string;
  /**
   * For `enum` fields: the allowed values.
   */
  options: unknown[];
  /**
   * The initial text of the input (the schema's default, or empty).
   */
  initial: string;
}

/**
 * The text of each field, by name.
 */
export type FormValues = Record<string, string>;

/**
 * The fields of a tool's input schema, in property order.
 */
export function fieldsOf(schema: IJSONSchema | null | undefined): IField[] {
  const properties = schema?.properties ?? {};
  const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
  return Object.entries(properties).map(([name, property]) =>
    fieldOf(name, property ?? {}, required.has(name))
  );
}

/**
 * The initial text of every field.
 */
export function initialValues(fields: readonly IField[]): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    values[field.name] = field.initial;
  }
  return values;
}

/**
 * Convert the form's text values to tool arguments.
 *
 * Empty optional fields are left out; an empty required field, a number that
 * does not parse, or JSON that is invalid or of the wrong type gets a message.
 *
 * @returns The arguments and a message per bad field (empty when all is well).
 */
export function buildArguments(
  fields: readonly IField[],
  values: FormValues
): { args: Record<string, unknown>; errors: Record<string, string> } {
  const args: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const text = values[field.name] ?? '';
    if (text.trim() === '' && field.kind !== 'string') {
      if (field.required) {
        errors[field.name] = 'Required.';
      }
      continue;
    }
    if (text === '' && field.kind === 'string') {
      if (field.required) {
        errors[field.name] = 'Required.';
      }
      continue;
    }
    switch (field.kind) {
      case 'string':
        args[field.name] = text;
        break;
      case 'number':
      case 'integer': {
        const value = Number(text.trim());
        if (!Number.isFinite(value)) {
          errors[field.name] = 'Enter a number.';
        } else if (field.kind === 'integer' && !Number.isInteger(value)) {
          errors[field.name] = 'Enter a whole number.';
        } else {
          args[field.name] = value;
        }
        break;
      }
      case 'boolean':
        args[field.name] = text === 'true';
        break;
      case 'enum': {
        const index = Number(text);
        if (Number.isInteger(index) && index >= 0 && index < field.options.length) {
          args[field.name] = field.options[index];
        } else {
          errors[field.name] = 'Pick one of the values.';
        }
        break;
      }
      case 'json': {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (e) {
          errors[field.name] = `Not valid JSON: ${(e as Error).message}`;
          break;
        }
        if (field.jsonType === 'array' && !Array.isArray(value)) {
          errors[field.name] = 'Enter a JSON array ([…]).';
        } else if (
          field.jsonType === 'object' &&
          (typeof value !== 'object' || value === null || Array.isArray(value))
        ) {
          errors[field.name] = 'Enter a JSON object ({…}).';
        } else {
          args[field.name] = value;
        }
        break;
      }
    }
  }
  return { args, errors };
}

function fieldOf(name: string, schema: IJSONSchema, required: boolean): IField {
  const resolved = nonNullVariant(schema);
  const type = primaryType(resolved);
  const description = String(schema.description ?? resolved.description ?? '');
  const label = String(schema.title ?? resolved.title ?? name);
  const base = { name, label, required, description, options: [] as unknown[] };
  const fallbackDefault = schema.default !== undefined ? schema.default : resolved.default;

  const options = Array.isArray(resolved.enum) ? resolved.enum : null;
  if (options && options.length > 0) {
    const index = options.findIndex(o => JSON.stringify(o) === JSON.stringify(fallbackDefault));
    return {
      ...base,
      kind: 'enum',
      jsonType: null,
      options,
      initial: index >= 0 ? String(index) : required ? '0' : ''
    };
  }
  switch (type) {
    case 'string':
      return {
        ...base,
        kind: 'string',
        jsonType: null,
        initial: typeof fallbackDefault === 'string' ? fallbackDefault : ''
      };
    case 'number':
    case 'integer':
      return {
        ...base,
        kind: type,
        jsonType: null,
        initial: typeof fallbackDefault === 'number' ? String(fallbackDefault) : ''
      };
    case 'boolean':
      return {
        ...base,
        kind: 'boolean',
        jsonType: null,
        initial: typeof fallbackDefault === 'boolean' ? String(fallbackDefault) : ''
      };
    default:
      return {
        ...base,
        kind: 'json',
        jsonType: type === 'object' || type === 'array' ? type : null,
        initial: fallbackDefault !== undefined ? JSON.stringify(fallbackDefault, null, 2) : ''
      };
  }
}

/**
 * `anyOf: [X, {type: null}]` (how pydantic spells Optional[X]) is X.
 */
function nonNullVariant(schema: IJSONSchema): IJSONSchema {
  const variants = schema.anyOf ?? schema.oneOf;
  if (!Array.isArray(variants)) {
    return schema;
  }
  const others = variants.filter(v => v && v.type !== 'null');
  return others.length === 1 ? { ...others[0], ...withoutUnion(schema) } : schema;
}

function withoutUnion(schema: IJSONSchema): IJSONSchema {
  const rest: IJSONSchema = { ...schema };
  delete rest.anyOf;
  delete rest.oneOf;
  return rest;
}

function primaryType(schema: IJSONSchema): string | null {
  const type = schema.type;
  if (typeof type === 'string') {
    return type;
  }
  if (Array.isArray(type)) {
    const others = type.filter(t => t !== 'null');
    return others.length === 1 ? others[0] : null;
  }
  if (schema.properties) {
    return 'object';
  }
  return null;
}
