/**
 * Pure helpers behind the Resources and Prompts sections: how a resource's
 * content is shown (an image, JSON, text or bytes to download), how a resource
 * template becomes a URI, and a prompt's arguments as the schema the form
 * builder (`schemaForm.ts`) reads.
 *
 * Nothing an MCP server sends is shown as HTML: text stays text, and only the
 * raster image types in `IMAGE_TYPES` become `<img>` data URLs.
 */
import type { IJSONSchema, IPromptInfo, IResourceContents } from './tokens';

/**
 * Image types shown as pictures (not SVG, which can carry scripts).
 */
export const IMAGE_TYPES: ReadonlySet<string> = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp'
]);

/**
 * The longest text shown in full; longer texts are cut, with a note.
 */
export const MAX_SHOWN_TEXT = 200000;

/**
 * How one content of a read resource is shown.
 *
 * - `image`: a raster image, as a data URL.
 * - `json`: JSON text, reindented.
 * - `text`: any other text (cut to `MAX_SHOWN_TEXT`; `truncated` says so).
 * - `binary`: bytes, shown by size and offered as a download.
 */
export type ContentView =
  | { kind: 'image'; mime: string; size: number; dataUrl: string }
  | { kind: 'json'; mime: string; text: string; truncated: boolean }
  | { kind: 'text'; mime: string; text: string; truncated: boolean }
  | { kind: 'binary'; mime: string; size: number; base64: string };

/**
 * How to show `content`.
 */
export function viewOf(content: IResourceContents): ContentView {
  const mime = (content.mimeType ?? '').split(';')[0].trim().toLowerCase();
  if (typeof content.text === 'string') {
    const pretty = isJSONType(mime) || !mime ? prettyJSON(content.text) : null;
    const text = pretty ?? content.text;
    const truncated = text.length > MAX_SHOWN_TEXT;
    const shown = truncated ? text.slice(0, MAX_SHOWN_TEXT) : text;
    return pretty !== null
      ? { kind: 'json', mime, text: shown, truncated }
      : { kind: 'text', mime, text: shown, truncated };
  }
  const base64 = typeof content.blob === 'string' ? content.blob.replace(/\s+/g, '') : '';
  const size = base64Size(base64);
  if (IMAGE_TYPES.has(mime) && base64) {
    return { kind: 'image', mime, size, dataUrl: `data:${mime};base64,${base64}` };
  }
  return { kind: 'binary', mime, size, base64 };
}

/**
 * `application/json` and `…+json`.
 */
export function isJSONType(mime: string): boolean {
  return mime === 'application/json' || mime.endsWith('+json');
}

/**
 * `text` reindented when it is a JSON object or array; `null` otherwise.
 */
export function prettyJSON(text: string): string | null {
  const trimmed = text.trim();
  if (!(trimmed.startsWith('{') || trimmed.startsWith('[')) || trimmed.length > 5000000) {
    return null;
  }
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return null;
  }
}

/**
 * How many bytes a base64 text holds.
 */
export function base64Size(base64: string): number {
  const clean = base64.replace(/\s+/g, '');
  if (!clean) {
    return 0;
  }
  const padding = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

/**
 * A byte count for people: `512 bytes`, `1.5 KB`, `2.0 MB`.
 */
export function formatBytes(size: number): string {
  if (size < 1024) {
    return `${size} byte${size === 1 ? '' : 's'}`;
  }
  if (size < 1024 * 1024) {
    return `${(size / 1024).toFixed(1)} KB`;
  }
  return `${(size / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * A file name for downloading a resource: the last part of its URI, else
 * `resource`, with an extension its type suggests when it has none.
 */
export function downloadName(uri: string, mime: string): string {
  const last = uri.replace(/[?#].*$/, '').split('/').filter(Boolean).pop() ?? '';
  const base = last.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '') || 'resource';
  if (/\.[A-Za-z0-9]{1,8}$/.test(base)) {
    return base;
  }
  const extensions: Record<string, string> = {
    'application/octet-stream': '.bin',
    'application/pdf': '.pdf',
    'application/zip': '.zip',
    'image/svg+xml': '.svg'
  };
  return base + (extensions[mime] ?? '');
}

const VARIABLE = /\{([^{}]+)\}/g;

/**
 * The variable names of an RFC 6570 template, in order, each once.
 */
export function templateVariables(template: string): string[] {
  const names: string[] = [];
  for (const match of template.matchAll(VARIABLE)) {
    if (!names.includes(match[1])) {
      names.push(match[1]);
    }
  }
  return names;
}

/**
 * The URI of a template with each `{name}` replaced by its value,
 * percent-encoded (RFC 6570 level 1).
 */
export function expandTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(VARIABLE, (_, name: string) => encodeURIComponent(values[name] ?? ''));
}

/**
 * A prompt's arguments as the JSON Schema of an object of strings, for the
 * form builder; titles and descriptions kept, required arguments required.
 */
export function promptSchema(prompt: IPromptInfo): IJSONSchema {
  const properties: Record<string, IJSONSchema> = {};
  const required: string[] = [];
  for (const argument of prompt.arguments ?? []) {
    const property: IJSONSchema = { type: 'string' };
    if (argument.title) {
      property.title = argument.title;
    }
    if (argument.description) {
      property.description = argument.description;
    }
    properties[argument.name] = property;
    if (argument.required) {
      required.push(argument.name);
    }
  }
  return { type: 'object', properties, required };
}
