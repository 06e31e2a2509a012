/**
 * The form for a `static_headers` server: one input per header the catalog
 * entry declares. Secret headers are password inputs; values are sent once,
 * stored encrypted by the server, and never shown again (the inputs are
 * cleared after saving).
 */
import * as React from 'react';

import type { DodoModel } from '../model';
import { toAPIError } from '../model';
import type { ICatalogEntry } from '../tokens';
import { Field, domId } from './common';

/**
 * Props of `HeadersForm`.
 */
export interface IHeadersFormProps {
  model: DodoModel;
  entry: ICatalogEntry;
  onSaved: () => void;
  onCancel?: () => void;
}

export function HeadersForm({
  model,
  entry,
  onSaved,
  onCancel
}: IHeadersFormProps): React.ReactElement {
  const [values, setValues] = React.useState<Record<string, string>>({});
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [message, setMessage] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setMessage(null);
    try {
      await model.saveHeaders(entry.id, values);
      setValues({});
      onSaved();
    } catch (reason) {
      const error = toAPIError(reason);
      const byName: Record<string, string> = {};
      for (const [name, text] of Object.entries(error.fields)) {
        const header = entry.headers.find(h => h.name.toLowerCase() === name.toLowerCase());
        byName[header?.name ?? name] = text;
      }
      setErrors(byName);
      setMessage(Object.keys(byName).length ? null : error.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="jp-dodo-Form"
      onSubmit={e => void submit(e)}
      aria-label={`Headers for ${entry.display_name || entry.name}`}
    >
      {entry.headers.map(header => (
        <Field
          key={header.name}
          id={domId('header', entry.id, header.name)}
          label={header.name}
          hint={
            (header.description ? header.description + ' ' : '') +
            (header.is_secret ? '(secret: stored encrypted, never shown again)' : '')
          }
          error={errors[header.name]}
          required
        >
          {props => (
            <input
              {...props}
              className="jp-mod-styled jp-dodo-Input"
              type={header.is_secret ? 'password' : 'text'}
              autoComplete="off"
              spellCheck={false}
              value={values[header.name] ?? ''}
              onChange={e => setValues({ ...values, [header.name]: e.target.value })}
            />
          )}
        </Field>
      ))}
      {message && (
        <div className="jp-dodo-Field-error" role="alert">
          {message}
        </div>
      )}
      <div className="jp-dodo-Actions">
        <button type="submit" className="jp-mod-styled jp-mod-accept" disabled={busy}>
          Save and connect
        </button>
        {onCancel && (
          <button type="button" className="jp-mod-styled" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
